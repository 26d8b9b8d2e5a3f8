/*
 * es10b_notif: the eUICC's notification queue (SGP.22 3.5, 5.7.9-5.7.11;
 * digest 8): ListNotification, RetrieveNotificationsList and
 * RemoveNotificationFromList, and the queuing of the signed
 * OtherSignedNotification for enable, disable and delete.
 *
 * Each notification gets its seqNumber from one persistent counter that
 * only goes up (euicc_db_next_seq), in the same transaction as the state
 * change it reports, so numbers are unique and increasing across restarts
 * and crashes. The queue is bounded (max_notifications): an operation that
 * would queue past the bound is refused, never a notification dropped.
 * Notifications are kept whole, exactly as signed, until the LPA removes
 * them.
 */
#include <stdlib.h>
#include <string.h>

#include "esim/rsp.h"

#include "euicc_int.h"

esim_err euicc_notif_room(euicc *e, size_t needed, bool *ok)
{
	size_t n = 0;
	esim_err err = euicc_db_notif_count(e->db, &n);
	if (err == ESIM_OK)
		*ok = n + needed <= e->max_notifs;
	return err;
}

static const struct euicc_ident *ident_for_profile(const euicc *e, const struct euicc_profile *p)
{
	int i = euicc_identity_for_ci(e, p->ci_pkid, p->ci_pkid_len);
	return &e->ids[i < 0 ? 0 : i];
}

esim_err euicc_notify_other(euicc *e, const struct euicc_profile *p, enum euicc_pmo pmo)
{
	/* the address of the notificationConfigurationInfo entry whose PMO
	 * lists this event; none: no notification */
	struct rsp_metadata m;
	if (rsp_metadata_decode(p->metadata, p->metadata_len, &m) != ESIM_OK)
		return ESIM_E_EUICC_STATE;
	const char *a = rsp_metadata_notif_address(&m, (enum rsp_event)pmo);
	if (a == NULL) {
		rsp_metadata_free(&m);
		return ESIM_OK;
	}
	der_span addr = {(const uint8_t *)a, strlen(a)};
	struct euicc_notif n = {0};
	esim_err err = euicc_db_next_seq(e->db, &n.seq);
	if (err != ESIM_OK) {
		rsp_metadata_free(&m);
		return err;
	}
	n.pmo = (int)pmo;
	const struct euicc_ident *id = ident_for_profile(e, p);
	err = euicc_build_other_notification(id, n.seq, pmo, addr, p->iccid, &n.meta, &n.meta_len,
					     &n.data, &n.data_len);
	if (err == ESIM_OK)
		err = euicc_db_notif_insert(e->db, &n);
	rsp_metadata_free(&m);
	free(n.meta);
	free(n.data);
	return err;
}

esim_err es10b_list_notification(euicc *e, der_cursor *req, der_builder *b)
{
	bool has_filter = false;
	der_cursor fc;
	uint64_t mask = ~0ull;
	esim_err err = der_get_optional(req, 0x81, &has_filter, &fc);
	if (err != ESIM_OK)
		return euicc_bad(err);
	if (has_filter) {
		der_bits bits;
		der_span v = {fc.p, fc.len};
		err = der_value_bit_string(v, &bits);
		if (err == ESIM_OK)
			err = der_bits_to_mask(&bits, &mask);
		if (err != ESIM_OK) {
			der_builder_open(b, 0xBF28);
			der_add_int64(b, 0x81, 127);
			return der_builder_close(b);
		}
	}
	struct euicc_notif *v = NULL;
	size_t n = 0;
	err = euicc_db_notifs(e->db, false, &v, &n);
	if (err != ESIM_OK)
		return err;
	der_builder_open(b, 0xBF28);
	der_builder_open(b, 0xA0);
	for (size_t i = 0; i < n; i++)
		if (mask & (1ull << v[i].pmo))
			der_add_raw(b, v[i].meta, v[i].meta_len);
	der_builder_close(b);
	err = der_builder_close(b);
	euicc_notifs_free(v, n);
	return err;
}

esim_err es10b_retrieve_notifications(euicc *e, der_cursor *req, der_builder *b)
{
	bool has_crit = false, by_seq = false;
	der_cursor crit;
	int64_t seq = -1;
	uint64_t mask = ~0ull;
	esim_err err = der_get_optional(req, 0xA0, &has_crit, &crit);
	if (err != ESIM_OK)
		return euicc_bad(err);
	if (has_crit) {
		uint32_t tag = 0;
		err = der_peek_tag(&crit, &tag);
		if (err == ESIM_OK && tag == 0x80) {
			by_seq = true;
			err = der_get_int64(&crit, 0x80, &seq);
		} else if (err == ESIM_OK && tag == 0x81) {
			der_bits bits;
			err = der_get_bit_string(&crit, 0x81, &bits);
			if (err == ESIM_OK)
				err = der_bits_to_mask(&bits, &mask);
		} else if (err == ESIM_OK) {
			err = ESIM_E_EUICC_BAD_COMMAND;
		}
		if (err != ESIM_OK)
			return euicc_bad(err);
	}
	struct euicc_notif *v = NULL;
	size_t n = 0;
	err = euicc_db_notifs(e->db, true, &v, &n);
	if (err != ESIM_OK)
		return err;
	size_t found = 0;
	for (size_t i = 0; i < n; i++)
		if (by_seq ? v[i].seq == seq : (mask & (1ull << v[i].pmo)) != 0)
			found++;
	der_builder_open(b, 0xBF2B);
	if (found == 0 && has_crit) {
		der_add_int64(b, 0x81, 1); /* noResultAvailable */
	} else {
		der_builder_open(b, 0xA0);
		for (size_t i = 0; i < n; i++)
			if (by_seq ? v[i].seq == seq : (mask & (1ull << v[i].pmo)) != 0)
				der_add_raw(b, v[i].data, v[i].data_len);
		der_builder_close(b);
	}
	err = der_builder_close(b);
	euicc_notifs_free(v, n);
	return err;
}

esim_err es10b_remove_notification(euicc *e, der_cursor *req, der_builder *b)
{
	int64_t seq;
	esim_err err = der_get_int64(req, 0x80, &seq);
	if (err != ESIM_OK)
		return euicc_bad(err);
	err = euicc_db_notif_remove(e->db, seq);
	if (err == ESIM_E_NOT_FOUND)
		return euicc_result(b, 0xBF30, 1); /* nothingToDelete */
	if (err != ESIM_OK)
		return err;
	return euicc_result(b, 0xBF30, 0);
}
