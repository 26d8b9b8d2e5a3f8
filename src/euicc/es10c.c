/*
 * es10c: local profile management by the LPA (SGP.22 5.7.15-5.7.21,
 * digest 4.1, 4.4, 4.5): GetProfilesInfo, EnableProfile, DisableProfile,
 * DeleteProfile, eUICCMemoryReset, GetEID and SetNickname.
 *
 * Every state change and the notifications it queues (enable, disable,
 * delete, each only when the profile's notificationConfigurationInfo lists
 * the event) are committed in one transaction before the result is built,
 * so a crash leaves either the old state or the new one with its
 * notifications. Profile policy rules: PPR1 forbids disabling the enabled
 * profile (so also enabling another one), PPR2 forbids deletion.
 */
#include <stdlib.h>
#include <string.h>

#include "euicc_int.h"

#define PPR1 (1u << 1)
#define PPR2 (1u << 2)

/* ProfileInfo fields in ASN.1 order, and those returned without tagList:
 * the notification configuration (B6) and the policy rules (99) too, so
 * that an LPA asking without a tagList can tell the user that a profile
 * cannot be disabled (PPR1) or deleted (PPR2) before trying. */
static const uint32_t info_order[] = {0x5A, 0x4F, 0x9F70, 0x90, 0x91, 0x92, 0x93,
				      0x94, 0x95, 0xB6,	  0xB7, 0xB8, 0x99};
static const uint32_t info_default[] = {0x5A, 0x4F, 0x9F70, 0x90, 0x91, 0x92,
					0x93, 0x94, 0x95,   0xB6, 0x99};

static bool taglist_has(der_span list, uint32_t tag)
{
	der_cursor c = der_cursor_of(list);
	while (!der_cursor_empty(&c)) {
		uint32_t t;
		if (der_peek_tag(&c, &t) != ESIM_OK)
			return false;
		if (t == tag)
			return true;
		size_t n = der_tag_len(t);
		c.p += n;
		c.len -= n;
	}
	return false;
}

static bool wanted(const der_span *taglist, uint32_t tag)
{
	if (taglist != NULL)
		return taglist_has(*taglist, tag);
	for (size_t i = 0; i < sizeof info_default / sizeof info_default[0]; i++)
		if (info_default[i] == tag)
			return true;
	return false;
}

/* Copy the metadata element with tag from the stored BF25, if present. */
static void add_from_metadata(der_builder *b, const struct euicc_profile *p, uint32_t tag)
{
	der_cursor c, kids;
	der_cursor_init(&c, p->metadata, p->metadata_len);
	if (der_get_element(&c, 0xBF25, &kids) != ESIM_OK)
		return;
	der_element el;
	esim_err err = ESIM_OK;
	while (der_next_child(&kids, &el, &err))
		if (el.tag == tag) {
			der_add_raw(b, el.tlv.p, el.tlv.len);
			return;
		}
}

static void add_profile_info(der_builder *b, const struct euicc_profile *p, const der_span *taglist)
{
	der_builder_open(b, 0xE3);
	for (size_t i = 0; i < sizeof info_order / sizeof info_order[0]; i++) {
		uint32_t t = info_order[i];
		if (!wanted(taglist, t))
			continue;
		switch (t) {
		case 0x5A:
			der_add_octet_string(b, 0x5A, p->iccid, EUICC_ICCID_LEN);
			break;
		case 0x4F:
			der_add_octet_string(b, 0x4F, p->aid, EUICC_AID_LEN);
			break;
		case 0x9F70:
			der_add_int64(b, 0x9F70, p->state);
			break;
		case 0x90:
			if (p->nickname[0] != '\0')
				der_add_utf8(b, 0x90, p->nickname, strlen(p->nickname));
			break;
		case 0x95:
			der_add_int64(b, 0x95, p->profile_class);
			break;
		case 0xB8:
			if (p->dp_prop != NULL)
				der_add_raw(b, p->dp_prop, p->dp_prop_len);
			break;
		default:
			add_from_metadata(b, p, t);
			break;
		}
	}
	der_builder_close(b);
}

esim_err es10c_get_profiles_info(euicc *e, der_cursor *req, der_builder *b)
{
	bool has_crit = false, has_tags = false;
	der_cursor crit;
	der_span tags = {NULL, 0};
	esim_err err = der_get_optional(req, 0xA0, &has_crit, &crit);
	if (err == ESIM_OK) {
		der_cursor t;
		err = der_get_optional(req, 0x5C, &has_tags, &t);
		if (has_tags) {
			tags.p = t.p;
			tags.len = t.len;
		}
	}
	if (err != ESIM_OK)
		return euicc_bad(err);

	uint32_t ctag = 0;
	der_span cval = {NULL, 0};
	int64_t cls = -1;
	if (has_crit) {
		der_element el = {0};
		bool bad = der_get_any(&crit, &el) != ESIM_OK || der_expect_end(&crit) != ESIM_OK;
		ctag = el.tag;
		cval = el.value;
		if (bad || (ctag == 0x5A && cval.len != EUICC_ICCID_LEN) ||
		    (ctag == 0x4F && (cval.len < 5 || cval.len > 16)) ||
		    (ctag == 0x95 && der_value_int64(cval, &cls) != ESIM_OK) ||
		    (ctag != 0x5A && ctag != 0x4F && ctag != 0x95)) {
			der_builder_open(b, 0xBF2D);
			der_add_int64(b, 0x81, 1); /* incorrectInputValues */
			return der_builder_close(b);
		}
	}

	struct euicc_profile *v = NULL;
	size_t n = 0;
	err = euicc_db_profiles(e->db, &v, &n);
	if (err != ESIM_OK)
		return err;
	der_builder_open(b, 0xBF2D);
	der_builder_open(b, 0xA0);
	for (size_t i = 0; i < n; i++) {
		const struct euicc_profile *p = &v[i];
		if (ctag == 0x5A && memcmp(p->iccid, cval.p, EUICC_ICCID_LEN) != 0)
			continue;
		if (ctag == 0x4F &&
		    (cval.len != EUICC_AID_LEN || memcmp(p->aid, cval.p, EUICC_AID_LEN) != 0))
			continue;
		if (ctag == 0x95 && p->profile_class != cls)
			continue;
		add_profile_info(b, p, has_tags ? &tags : NULL);
	}
	der_builder_close(b);
	err = der_builder_close(b);
	euicc_profiles_free(v, n);
	return err;
}

/* Read a profile identifier (4F isdpAid or 5A iccid) and look it up.
 * *found is false for an unknown (or malformed-length) identifier. */
static esim_err find_profile(euicc *e, der_cursor *c, struct euicc_profile *p, bool *found)
{
	der_element el;
	esim_err err = der_get_any(c, &el);
	if (err != ESIM_OK)
		return euicc_bad(err);
	*found = false;
	if (el.tag == 0x5A) {
		if (el.value.len != EUICC_ICCID_LEN)
			return ESIM_OK;
		err = euicc_db_profile_by_iccid(e->db, el.value.p, p);
	} else if (el.tag == 0x4F) {
		err = euicc_db_profile_by_aid(e->db, el.value.p, el.value.len, p);
	} else {
		return ESIM_E_EUICC_BAD_COMMAND;
	}
	if (err == ESIM_E_NOT_FOUND)
		return ESIM_OK;
	if (err == ESIM_OK)
		*found = true;
	return err;
}

static esim_err find_enabled(euicc *e, struct euicc_profile *out, bool *found)
{
	struct euicc_profile *v = NULL;
	size_t n = 0;
	*found = false;
	esim_err err = euicc_db_profiles(e->db, &v, &n);
	if (err != ESIM_OK)
		return err;
	for (size_t i = 0; i < n; i++)
		if (v[i].state == 1) {
			*out = v[i];
			memset(&v[i], 0, sizeof v[i]);
			*found = true;
			break;
		}
	euicc_profiles_free(v, n);
	return ESIM_OK;
}

/* End the caller's transaction: commit on success, else roll back. */
static esim_err tx_end(euicc *e, esim_err err)
{
	if (err != ESIM_OK) {
		store_rollback(e->db);
		return err;
	}
	return store_commit(e->db);
}

static esim_err parse_target_and_refresh(der_cursor *req, der_cursor *choice)
{
	bool refresh = false;
	esim_err err = der_get_element(req, 0xA0, choice);
	if (err == ESIM_OK)
		err = der_get_bool(req, 0x81, &refresh);
	return euicc_bad(err);
}

esim_err es10c_enable(euicc *e, der_cursor *req, der_builder *b)
{
	der_cursor choice;
	esim_err err = parse_target_and_refresh(req, &choice);
	if (err != ESIM_OK)
		return err;
	struct euicc_profile p = {0}, cur = {0};
	bool found = false, have_cur = false;
	int64_t code = 0;
	err = find_profile(e, &choice, &p, &found);
	if (err != ESIM_OK)
		return err;
	if (!found) {
		code = 1;
		goto out;
	}
	if (p.state != 0) {
		code = 2;
		goto out;
	}
	err = find_enabled(e, &cur, &have_cur);
	if (err != ESIM_OK)
		goto out;
	if (have_cur && (cur.ppr & PPR1)) {
		code = 3;
		goto out;
	}
	bool room = false;
	err = euicc_notif_room(e, 2, &room);
	if (err != ESIM_OK)
		goto out;
	if (!room) {
		code = 127;
		goto out;
	}
	err = store_begin(e->db);
	if (err != ESIM_OK)
		goto out;
	if (have_cur) {
		err = euicc_db_profile_set_state(e->db, cur.id, 0);
		if (err == ESIM_OK)
			err = euicc_notify_other(e, &cur, EUICC_PMO_DISABLE);
	}
	if (err == ESIM_OK)
		err = euicc_db_profile_set_state(e->db, p.id, 1);
	if (err == ESIM_OK)
		err = euicc_notify_other(e, &p, EUICC_PMO_ENABLE);
	err = tx_end(e, err);
out:
	euicc_profile_clear(&p);
	euicc_profile_clear(&cur);
	if (err != ESIM_OK)
		return err;
	return euicc_result(b, 0xBF31, code);
}

esim_err es10c_disable(euicc *e, der_cursor *req, der_builder *b)
{
	der_cursor choice;
	esim_err err = parse_target_and_refresh(req, &choice);
	if (err != ESIM_OK)
		return err;
	struct euicc_profile p = {0};
	bool found = false, room = false;
	int64_t code = 0;
	err = find_profile(e, &choice, &p, &found);
	if (err != ESIM_OK)
		return err;
	if (!found)
		code = 1;
	else if (p.state != 1)
		code = 2;
	else if (p.ppr & PPR1)
		code = 3;
	else if ((err = euicc_notif_room(e, 1, &room)) == ESIM_OK && !room)
		code = 127;
	if (err == ESIM_OK && code == 0) {
		err = store_begin(e->db);
		if (err == ESIM_OK) {
			err = euicc_db_profile_set_state(e->db, p.id, 0);
			if (err == ESIM_OK)
				err = euicc_notify_other(e, &p, EUICC_PMO_DISABLE);
			err = tx_end(e, err);
		}
	}
	euicc_profile_clear(&p);
	if (err != ESIM_OK)
		return err;
	return euicc_result(b, 0xBF32, code);
}

esim_err es10c_delete(euicc *e, der_cursor *req, der_builder *b)
{
	struct euicc_profile p = {0};
	bool found = false, room = false;
	int64_t code = 0;
	esim_err err = find_profile(e, req, &p, &found);
	if (err != ESIM_OK)
		return err;
	if (!found)
		code = 1;
	else if (p.state != 0)
		code = 2;
	else if (p.ppr & PPR2)
		code = 3;
	else if ((err = euicc_notif_room(e, 1, &room)) == ESIM_OK && !room)
		code = 127;
	if (err == ESIM_OK && code == 0) {
		err = store_begin(e->db);
		if (err == ESIM_OK) {
			err = euicc_db_profile_delete(e->db, p.id);
			if (err == ESIM_OK)
				err = euicc_notify_other(e, &p, EUICC_PMO_DELETE);
			err = tx_end(e, err);
		}
	}
	euicc_profile_clear(&p);
	if (err != ESIM_OK)
		return err;
	return euicc_result(b, 0xBF33, code);
}

esim_err es10c_memory_reset(euicc *e, der_cursor *req, der_builder *b)
{
	der_bits bits;
	esim_err err = der_get_bit_string(req, 0x82, &bits);
	if (err != ESIM_OK)
		return euicc_bad(err);
	bool del_op = der_bits_test(&bits, 0), del_test = der_bits_test(&bits, 1);
	bool reset_dp = der_bits_test(&bits, 2);

	struct euicc_profile *v = NULL;
	size_t n = 0;
	char *dp = NULL;
	err = euicc_db_profiles(e->db, &v, &n);
	if (err == ESIM_OK)
		err = euicc_db_get_setting(e->db, "default_dp_address", &dp);
	if (err != ESIM_OK) {
		euicc_profiles_free(v, n);
		return err;
	}
	/* No delete notifications are queued for profiles a memory reset
	 * removes (SGP.22 leaves it open, digest 4.5); pending notifications
	 * stay until the LPA removes them. */
	bool any = false;
	err = store_begin(e->db);
	if (err != ESIM_OK) {
		euicc_profiles_free(v, n);
		free(dp);
		return err;
	}
	for (size_t i = 0; err == ESIM_OK && i < n; i++) {
		/* operational = 2, test = 0; provisioning profiles stay */
		if ((del_op && v[i].profile_class == 2) || (del_test && v[i].profile_class == 0)) {
			err = euicc_db_profile_delete(e->db, v[i].id);
			any = true;
		}
	}
	if (err == ESIM_OK && reset_dp && dp != NULL) {
		err = euicc_db_set_setting(e->db, "default_dp_address", NULL);
		any = true;
	}
	err = tx_end(e, err);
	euicc_profiles_free(v, n);
	free(dp);
	if (err != ESIM_OK)
		return err;
	return euicc_result(b, 0xBF34, any ? 0 : 1);
}

esim_err es10c_get_eid(euicc *e, der_cursor *req, der_builder *b)
{
	(void)req; /* tagList 5C 01 5A, or nothing: the EID is all there is */
	der_builder_open(b, 0xBF3E);
	der_add_octet_string(b, 0x5A, e->eid, EUICC_EID_LEN);
	return der_builder_close(b);
}

esim_err es10c_set_nickname(euicc *e, der_cursor *req, der_builder *b)
{
	der_span iccid, nick;
	esim_err err = der_get_octet_string(req, 0x5A, &iccid);
	if (err == ESIM_OK)
		err = der_get_utf8(req, 0x90, &nick);
	if (err != ESIM_OK)
		return euicc_bad(err);
	/* 0..64 characters of UTF-8, and no NUL (the store keeps text) */
	size_t chars = 0;
	for (size_t i = 0; i < nick.len; i++)
		if ((nick.p[i] & 0xC0) != 0x80)
			chars++;
	if (chars > 64 || memchr(nick.p, 0, nick.len) != NULL)
		return euicc_result(b, 0xBF29, 127);
	struct euicc_profile p = {0};
	int64_t code = 0;
	if (iccid.len != EUICC_ICCID_LEN)
		code = 1;
	else {
		err = euicc_db_profile_by_iccid(e->db, iccid.p, &p);
		if (err == ESIM_E_NOT_FOUND) {
			code = 1;
			err = ESIM_OK;
		} else if (err == ESIM_OK) {
			err = euicc_db_profile_set_nickname(e->db, p.id, (const char *)nick.p,
							    nick.len);
		}
	}
	euicc_profile_clear(&p);
	if (err != ESIM_OK)
		return err;
	return euicc_result(b, 0xBF29, code);
}
