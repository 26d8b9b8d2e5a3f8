/*
 * `esim cancel ICCID`: the device side of ending a subscription under
 * SGP.22 v2 (digest 9.6): disable the profile if it is enabled, delete it
 * (ES10c), deliver the eUICC-signed delete notification to the SM-DP+ named
 * in the profile's notification configuration (ES9+ handleNotification),
 * and print a receipt: EID, ICCID, time, the notification's sequence
 * number and the server's acknowledgement. When the SM-DP+ cannot be
 * reached the notification stays on the card, and a later
 * `esim notification process` delivers it.
 */
#define _GNU_SOURCE /* wcswidth */
#include <stdio.h>
#include <wchar.h>
#include <stdlib.h>
#include <string.h>

#include "esim/i18n.h"
#include "lpa/lpa.h"

static void cancel_usage(FILE *out)
{
	fprintf(
	    out, "%s",
	    _("usage: esim cancel ICCID [--yes]\n\n"
	      "Disables (if enabled) and deletes the profile, sends the delete notification to\n"
	      "its SM-DP+ and prints a receipt.\n\n"));
	lpa_usage_globals(out);
}

/* label padded to width columns as the terminal shows them (a translated
 * label may hold accents or CJK, which printf's %-Ns would misalign) */
static void put_label(const char *label, int width)
{
	wchar_t w[128];
	size_t n = mbstowcs(w, label, 127);
	int cols = n == (size_t)-1 ? (int)strlen(label) : wcswidth(w, n);
	if (cols < 0)
		cols = (int)strlen(label);
	fputs(label, stdout);
	for (int i = cols; i < width; i++)
		fputc(' ', stdout);
}

static void print_receipt(json_t *r)
{
	json_t *rc = json_object_get(r, "receipt");
	printf("\n%s\n", _("Receipt: eSIM profile deleted"));
	printf("  %-16s %s\n", "EID", json_string_value(json_object_get(r, "eid")));
	printf("  %-16s %s\n", "ICCID", json_string_value(json_object_get(r, "iccid")));
	printf("  ");
	put_label(_("deleted at"), 17);
	printf("%s\n", json_string_value(json_object_get(r, "deleted_at")));
	json_t *seq = json_object_get(rc, "seq");
	if (!json_is_integer(seq)) {
		printf("  ");
		put_label(_("notification"), 17);
		printf("%s\n", _("none (the profile asks for no delete notification)"));
		return;
	}
	printf("  ");
	put_label(_("sequence number"), 17);
	printf(_("%lld (delete)\n"), (long long)json_integer_value(seq));
	printf("  %-16s %s\n", "SM-DP+", json_string_value(json_object_get(rc, "address")));
	if (json_is_true(json_object_get(rc, "acknowledged"))) {
		printf("  ");
		put_label(_("acknowledged"), 17);
		printf(_("HTTP %lld at %s\n"),
		       (long long)json_integer_value(json_object_get(rc, "http_status")),
		       json_string_value(json_object_get(rc, "acknowledged_at")));
	} else {
		printf("  ");
		put_label(_("acknowledged"), 17);
		printf("%s\n", _("NO: the notification stays on the eUICC; run 'esim notification "
				 "process' later"));
	}
}

static int cancel_profile(struct lpa *L)
{
	if (L->npos != 1)
		return lpa_fail(L, CLI_EXIT_USAGE, "usage: esim cancel ICCID");
	struct rsp_profile_ref ref;
	if (rsp_profile_ref_parse(L->pos[0], &ref) != ESIM_OK || ref.by_aid)
		return lpa_fail(L, CLI_EXIT_USAGE, "'%s' is not an ICCID (18..20 digits)",
				L->pos[0]);
	int rc = lpa_http(L); /* without a CI nothing could be delivered: stop before deleting */
	char eid[RSP_EID_DIGITS + 1];
	if (rc == CLI_OK)
		rc = lpa_get_eid(L, eid);
	if (rc != CLI_OK)
		return rc;
	struct rsp_profile_list pl;
	rc = lpa_get_profiles(L, &ref, &pl);
	if (rc != CLI_OK)
		return rc;
	if (pl.n == 0) {
		rsp_profile_list_free(&pl);
		rc = lpa_fail(L, CLI_EXIT_CARD, "no profile %s on this eUICC", L->pos[0]);
		lpa_error_set(L, "result_name", json_string("iccidOrAidNotFound"));
		return rc;
	}
	const struct rsp_profile_info *p = &pl.items[0];
	bool enabled = p->has_state && p->state == RSP_PROFILE_ENABLED;
	char iccid[RSP_ICCID_TEXT_MAX];
	snprintf(iccid, sizeof iccid, "%s", p->has_iccid ? p->iccid : L->pos[0]);
	json_object_set_new(L->result, "eid", json_string(eid));
	json_object_set_new(L->result, "iccid", json_string(iccid));
	json_object_set_new(L->result, "service_provider", lpa_jstr(p->spn));
	json_object_set_new(L->result, "name", lpa_jstr(p->name));
	if (!L->o.yes) {
		char q[400];
		snprintf(q, sizeof q,
			 enabled
			     ? _("Delete profile %s (%s, %s), which is ENABLED, from eUICC %s? "
				 "This cannot be undone. [y/N] ")
			     : _("Delete profile %s (%s, %s) from eUICC %s? This cannot be undone. "
				 "[y/N] "),
			 iccid, p->spn ? p->spn : "-", p->name ? p->name : "-", eid);
		rsp_profile_list_free(&pl);
		if (!L->stdin_tty || L->o.json)
			return lpa_fail(L, CLI_EXIT_USAGE,
					"cancel deletes the profile: confirm with --yes when not "
					"running on a terminal");
		if (!lpa_confirm(L, q))
			return lpa_fail(L, CLI_EXIT_FAILURE, "not confirmed: nothing was changed");
	} else {
		rsp_profile_list_free(&pl);
	}
	uint8_t *req = NULL;
	size_t len = 0;
	if (enabled) {
		esim_err err = rsp_disable_profile_req(&ref, false, &req, &len);
		rc = lpa_es10_simple(L, RSP_ES10_DISABLE_PROFILE, err, req, len, NULL);
		if (rc != CLI_OK)
			return rc;
		if (L->tty)
			printf(_("1. profile %s disabled\n"), iccid);
	}
	json_object_set_new(L->result, "disabled_first", json_boolean(enabled));
	esim_err err = rsp_delete_profile_req(&ref, &req, &len);
	rc = lpa_es10_simple(L, RSP_ES10_DELETE_PROFILE, err, req, len, NULL);
	if (rc != CLI_OK)
		return rc;
	char when[32];
	lpa_now_iso(when);
	json_object_set_new(L->result, "deleted_at", json_string(when));
	if (L->tty)
		printf(_("%s. profile %s deleted\n"), enabled ? "2" : "1", iccid);

	json_t *notes = json_array();
	json_object_set_new(L->result, "notifications", notes);
	size_t failures = 0;
	int first_rc = CLI_OK;
	rc = lpa_process_notifications(L, ref.iccid, notes, &failures, &first_rc);
	if (rc != CLI_OK)
		return rc;
	/* the receipt is about the delete notification (the newest one) */
	json_t *receipt = json_object(), *del = NULL;
	size_t i;
	json_t *o;
	json_array_foreach(notes, i, o) if (strcmp(json_string_value(json_object_get(o, "event")),
						   "delete") == 0) del = o;
	json_object_set_new(receipt, "seq",
			    del ? json_incref(json_object_get(del, "seq")) : json_null());
	json_object_set_new(receipt, "address",
			    del ? json_incref(json_object_get(del, "address")) : json_null());
	bool ack = del && json_is_true(json_object_get(del, "delivered"));
	json_object_set_new(receipt, "acknowledged", json_boolean(ack));
	json_object_set_new(receipt, "acknowledged_at",
			    ack ? json_incref(json_object_get(del, "acknowledged_at"))
				: json_null());
	json_object_set_new(receipt, "http_status",
			    ack ? json_incref(json_object_get(del, "http_status")) : json_null());
	json_object_set_new(L->result, "receipt", receipt);
	if (!L->o.json)
		print_receipt(L->result);
	if (del != NULL && !ack)
		return lpa_fail(L, first_rc != CLI_OK ? first_rc : CLI_EXIT_NETWORK,
				"the profile is deleted, but its SM-DP+ did not get the delete "
				"notification; it stays on the eUICC: run 'esim notification "
				"process' later");
	if (failures > 0)
		lpa_warn(L, "%zu other notification(s) of this profile stay on the eUICC",
			 failures);
	return CLI_OK;
}

int cmd_cancel(int argc, char **argv)
{
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		cancel_usage(stdout);
		return CLI_OK;
	}
	struct lpa L;
	int rc = lpa_init(&L, "cancel", argc, argv, 1, NULL, NULL, NULL);
	if (rc < 0) {
		cancel_usage(stdout);
		L.exit_code = CLI_OK;
	} else if (rc == CLI_OK) {
		cancel_profile(&L);
	}
	return lpa_done(&L);
}
