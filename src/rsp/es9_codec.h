/*
 * Private to the ES9+ / ES11 codec (es9_msg.c, es9_json.c, es9_asn1.c):
 * the decoded messages' owned bytes, the description of each function's
 * byte fields shared by both bindings, and the error tables.
 */
#ifndef ESIM_RSP_ES9_CODEC_H
#define ESIM_RSP_ES9_CODEC_H

#include "esim/rsp_es9.h"

/* A decoded message owns a chain of blocks; every span points into one. */
esim_err es9__own(void **own, size_t len, uint8_t **out);
/* Copy p..p+len into a new block and point *dst at it. */
esim_err es9__own_copy(void **own, const uint8_t *p, size_t len, der_span *dst);
void es9__own_free(void **own);

/* One byte field of a message: its JSON name, where it sits in the struct,
 * the tag(s) of the complete TLV it must be (0: raw bytes, not a TLV;
 * alt: a second allowed tag, 0 for none) and its size cap. */
struct es9_field {
	const char *name;
	size_t offset; /* of the der_span in the struct */
	uint32_t tag, alt;
	size_t max;
};

/* The byte fields of fn's request / success response, in message order;
 * *n their count. txid tells whether a transactionId comes first. */
const struct es9_field *es9__request_fields(enum rsp_es9_fn fn, size_t *n, bool *txid);
const struct es9_field *es9__response_fields(enum rsp_es9_fn fn, size_t *n, bool *txid);
/* The rsp_txid of a request / response (NULL when the message has none). */
rsp_txid *es9__request_txid(struct rsp_es9_request *r);
rsp_txid *es9__response_txid(struct rsp_es9_response *r);

/* Check that bytes are exactly one DER element with tag f->tag or f->alt
 * (not for raw fields) and within f->max. */
esim_err es9__check_field(const struct es9_field *f, const uint8_t *p, size_t len);

/* The failure's subject / reason filled from the error and the other way
 * round, whichever is missing. */
void es9__complete_status(enum rsp_es9_fn fn, struct rsp_es9_response *r);

#endif
