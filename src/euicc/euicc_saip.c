/*
 * euicc_saip: what the virtual eUICC checks of an unprotected profile
 * package before keeping it (SGP.22 2.5.5 / SAIP; digest 13.5, 13.6): the
 * rsp layer's structure check (DER profile elements, the header first, an
 * mf, the end element last, unique PE identifications), and the header's
 * ICCID, which the caller compares with StoreMetadata's (else
 * installFailedDueToDataMismatch).
 */
#include "esim/rsp.h"
#include "esim/rsp_saip.h"

#include "euicc_int.h"

esim_err euicc_check_upp(const uint8_t *upp, size_t len, uint8_t iccid[EUICC_ICCID_LEN])
{
	struct rsp_saip_info info;
	esim_err err = rsp_saip_check(upp, len, &info);
	if (err != ESIM_OK)
		return err;
	return rsp_iccid_to_bcd(info.iccid, iccid);
}
