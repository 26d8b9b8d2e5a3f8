/*
 * rsp_saip: the SAIP profile package (UPP) as the eUICC receives it inside
 * the 86 segments of a BPP (digest section 13): a concatenation of DER
 * ProfileElements with no outer wrapper.
 *
 * rsp_saip_check() is the structure check the virtual eUICC applies before
 * it installs a profile; it does not interpret the file system.
 * rsp_saip_make_test_upp() builds a tiny valid package for tests that run
 * without ../shared; rsp_saip_personalise_iccid() rewrites the ICCID.
 */
#ifndef ESIM_RSP_SAIP_H
#define ESIM_RSP_SAIP_H

#include "esim/rsp.h"

#define RSP_SAIP_MAX_PES 4096 /* profile elements accepted in one package */

struct rsp_saip_info {
	unsigned major, minor;		/* ProfileHeader 80 / 81 */
	char iccid[RSP_ICCID_TEXT_MAX]; /* from the header (83, plain BCD) */
	der_span profile_type;		/* 82 content, UTF-8 (into the input; len 0 if absent) */
	uint64_t mandatory_services;	/* A5: bit n set for element tag 0x80 + n */
	size_t n_pe;			/* profile elements, header and end included */
	bool has_usim;			/* a usim PE (B3) is present */
	size_t err_offset;		/* on failure: offset of the offending element */
};

/* Bits of mandatory_services (digest 13.3). */
#define RSP_SAIP_SVC_USIM     (UINT64_C(1) << 1)
#define RSP_SAIP_SVC_ISIM     (UINT64_C(1) << 2)
#define RSP_SAIP_SVC_CSIM     (UINT64_C(1) << 3)
#define RSP_SAIP_SVC_MILENAGE (UINT64_C(1) << 4)

/* Check a UPP: DER elements only (ESIM_E_RSP_SAIP_MALFORMED), the header
 * first (..._NO_HEADER) with major/minor version and a 10-byte ICCID
 * (..._BAD_HEADER), an mf PE (..._NO_MF), an end PE last (..._NO_END),
 * no second header and nothing after end (..._MISPLACED), each other PE
 * starting with a PEHeader A0 { [80 00], 81 id } (..._BAD_PE_HEADER) whose
 * identification numbers are unique (..._DUPLICATE_ID), at most
 * RSP_SAIP_MAX_PES elements (ESIM_E_TOO_LARGE). out is filled as far as the
 * check got; on failure out->err_offset locates the element. */
esim_err rsp_saip_check(const uint8_t *upp, size_t len, struct rsp_saip_info *out);

/* A minimal valid package for tests: header (SAIP 2.3, the given ICCID,
 * no mandatory services, the MF template), mf with EF.ICCID, end.
 * *out: caller frees. */
esim_err rsp_saip_make_test_upp(const char *iccid, uint8_t **out, size_t *out_len);

/* Copy upp with the ICCID replaced in the header (plain BCD) and in the mf
 * element's EF.ICCID content (83 0A swapped BCD directly under ef-iccid,
 * A4). Both are fixed 10-byte fields, so nothing else moves. The package
 * must pass rsp_saip_check; ESIM_E_RSP_SAIP_NO_EF_ICCID when the mf has no
 * EF.ICCID content. *out: caller frees. */
esim_err rsp_saip_personalise_iccid(const uint8_t *upp, size_t len, const char *iccid,
				    uint8_t **out, size_t *out_len);

#endif
