/*
 * `esim notification`: the eUICC's pending notifications (SGP.22 3.5,
 * 5.7.9 to 5.7.11; digest 8.3). `list` shows their metadata, `process`
 * sends each to its notificationAddress with ES9+ handleNotification and
 * removes it from the card only after the server accepted it (a failure
 * keeps it for the next run), `remove` drops notifications without
 * sending them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "esim/i18n.h"
#include "lpa/lpa.h"

static void notif_usage(FILE *out)
{
	fputs(_("usage: esim notification list\n"
		"       esim notification process [SEQ...]\n"
		"       esim notification remove SEQ... | --all\n\n"),
	      out);
	lpa_usage_globals(out);
}

static json_t *notif_json(const struct rsp_notif_metadata *n)
{
	json_t *o = json_object();
	char iccid[RSP_ICCID_TEXT_MAX];
	json_object_set_new(o, "seq", json_integer((json_int_t)n->seq));
	json_object_set_new(o, "event", json_string(rsp_event_name(n->event)));
	json_object_set_new(o, "address", lpa_jstr(n->address));
	if (n->has_iccid && rsp_iccid_from_bcd(n->iccid, RSP_ICCID_LEN, iccid) == ESIM_OK)
		json_object_set_new(o, "iccid", json_string(iccid));
	else
		json_object_set_new(o, "iccid", json_null());
	return o;
}

static int parse_seq(struct lpa *L, const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (*s == '\0' || *s == '-' || *end != '\0')
		return lpa_fail(L, CLI_EXIT_USAGE, "'%s' is not a sequence number", s);
	*out = v;
	return CLI_OK;
}

static int notif_list(struct lpa *L)
{
	if (L->npos != 0)
		return lpa_fail(L, CLI_EXIT_USAGE, "notification list takes no arguments");
	struct rsp_notif_list nl;
	int rc = lpa_list_notifications(L, 0, &nl);
	if (rc != CLI_OK)
		return rc;
	json_t *a = json_array();
	for (size_t i = 0; i < nl.n; i++)
		json_array_append_new(a, notif_json(&nl.items[i]));
	json_object_set_new(L->result, "notifications", a);
	if (!L->o.json) {
		if (nl.n == 0)
			printf("%s\n", _("no pending notifications"));
		else
			printf("%-6s %-8s %-21s %s\n", _("SEQ"), _("EVENT"), "ICCID", _("ADDRESS"));
		size_t i;
		json_t *o;
		json_array_foreach(a, i, o)
		{
			const char *iccid = json_string_value(json_object_get(o, "iccid"));
			printf("%-6lld %-8s %-21s %s\n",
			       (long long)json_integer_value(json_object_get(o, "seq")),
			       json_string_value(json_object_get(o, "event")), iccid ? iccid : "-",
			       json_string_value(json_object_get(o, "address")));
		}
	}
	rsp_notif_list_free(&nl);
	return CLI_OK;
}

/* Fetch the signed notification seq from the card into *resp; *item
 * spans into it. */
static int retrieve(struct lpa *L, uint64_t seq, esim_buf *resp, der_span *item)
{
	uint8_t *req = NULL;
	size_t len = 0;
	esim_err err = rsp_retrieve_notification_req(seq, &req, &len);
	int rc = lpa_es10_owned(L, err, req, len, resp);
	if (rc != CLI_OK)
		return rc;
	der_span *items = NULL;
	size_t n = 0;
	int64_t code = 0;
	err = rsp_retrieve_notification_parse(resp->data, resp->len, &items, &n, &code);
	if (err == ESIM_E_RSP_EUICC_ERROR)
		return lpa_fail_card_result(L, RSP_ES10_RETRIEVE_NOTIFICATIONS, code);
	if (err != ESIM_OK)
		return lpa_fail_err(L, err, CLI_EXIT_CARD, "RetrieveNotificationsList");
	if (n != 1) {
		free(items);
		return lpa_fail(L, CLI_EXIT_CARD,
				"RetrieveNotificationsList returned %zu notifications for seq %llu",
				n, (unsigned long long)seq);
	}
	*item = items[0];
	free(items);
	return CLI_OK;
}

/* Deliver the pending notifications whose seq is in want (all when
 * n_want is 0) and whose ICCID matches iccid (any when NULL). Results go
 * to out (array). *failures counts the ones kept; *first_rc is the exit
 * code of the first failure. */
static int process(struct lpa *L, const uint64_t *want, size_t n_want, const uint8_t *iccid,
		   json_t *out, size_t *failures, int *first_rc)
{
	struct rsp_notif_list nl;
	int rc = lpa_list_notifications(L, 0, &nl);
	if (rc != CLI_OK)
		return rc;
	*failures = 0;
	*first_rc = CLI_OK;
	for (size_t i = 0; i < nl.n && rc == CLI_OK; i++) {
		const struct rsp_notif_metadata *m = &nl.items[i];
		bool wanted = n_want == 0;
		for (size_t k = 0; k < n_want; k++)
			wanted = wanted || want[k] == m->seq;
		if (!wanted || (iccid != NULL &&
				(!m->has_iccid || memcmp(m->iccid, iccid, RSP_ICCID_LEN) != 0)))
			continue;
		json_t *o = notif_json(m);
		esim_buf resp = ESIM_BUF_INIT;
		der_span item = {NULL, 0};
		rc = retrieve(L, m->seq, &resp, &item);
		if (rc == CLI_OK) {
			bool delivered = false;
			struct lpa_es9_status st;
			L->soft++;
			int drc = lpa_deliver_notification(L, item.p, item.len, m->address, m->seq,
							   &delivered, &st);
			L->soft--;
			json_object_set_new(o, "delivered", json_boolean(delivered));
			json_object_set_new(o, "removed", json_boolean(delivered && drc == CLI_OK));
			if (delivered) {
				char when[32];
				lpa_now_iso(when);
				json_object_set_new(o, "acknowledged_at", json_string(when));
				json_object_set_new(o, "http_status", json_integer(st.http_status));
			} else {
				json_object_set_new(o, "error", json_string(st.message));
			}
			if (!delivered || drc != CLI_OK) {
				(*failures)++;
				if (*first_rc == CLI_OK)
					*first_rc = drc;
			}
			if (L->tty)
				printf(
				    delivered
					? _("notification %llu (%s) to %s: delivered and removed\n")
					: _("notification %llu (%s) to %s: kept on the eUICC\n"),
				    (unsigned long long)m->seq, rsp_event_name(m->event),
				    m->address);
		}
		esim_buf_free(&resp);
		json_array_append_new(out, o);
	}
	rsp_notif_list_free(&nl);
	return rc;
}

int lpa_process_notifications(struct lpa *L, const uint8_t *iccid, json_t *out, size_t *failures,
			      int *first_rc)
{
	return process(L, NULL, 0, iccid, out, failures, first_rc);
}

static int notif_process(struct lpa *L)
{
	uint64_t want[LPA_MAX_POS];
	for (int i = 0; i < L->npos; i++)
		if (parse_seq(L, L->pos[i], &want[i]) != CLI_OK)
			return L->exit_code;
	int rc = lpa_http(L);
	if (rc != CLI_OK)
		return rc;
	json_t *out = json_array();
	json_object_set_new(L->result, "notifications", out);
	size_t failures = 0;
	int first_rc = CLI_OK;
	rc = process(L, want, (size_t)L->npos, NULL, out, &failures, &first_rc);
	if (rc != CLI_OK)
		return rc;
	size_t total = json_array_size(out);
	json_object_set_new(L->result, "delivered", json_integer((json_int_t)(total - failures)));
	json_object_set_new(L->result, "kept", json_integer((json_int_t)failures));
	if (failures > 0)
		return lpa_fail(L, first_rc != CLI_OK ? first_rc : CLI_EXIT_FAILURE,
				"%zu of %zu notifications could not be delivered; they stay on the "
				"eUICC for the next 'esim notification process'",
				failures, total);
	if (!L->o.json && !L->tty)
		printf(ngettext("%zu notification delivered\n", "%zu notifications delivered\n",
				total),
		       total);
	else if (!L->o.json && total == 0)
		printf("%s\n", _("no pending notifications"));
	return CLI_OK;
}

enum { OPT_ALL = 0x200 };

static int all_opt(struct lpa *L, int id, const char *arg, void *user)
{
	(void)L;
	(void)arg;
	if (id == OPT_ALL)
		*(bool *)user = true;
	return CLI_OK;
}

static int notif_remove(struct lpa *L, bool all)
{
	uint64_t seqs[64];
	size_t n = 0;
	if (all) {
		if (L->npos != 0)
			return lpa_fail(L, CLI_EXIT_USAGE,
					"give sequence numbers or --all, not both");
		struct rsp_notif_list nl;
		int rc = lpa_list_notifications(L, 0, &nl);
		if (rc != CLI_OK)
			return rc;
		for (size_t i = 0; i < nl.n && n < 64; i++)
			seqs[n++] = nl.items[i].seq;
		rsp_notif_list_free(&nl);
	} else {
		if (L->npos == 0)
			return lpa_fail(L, CLI_EXIT_USAGE,
					"usage: esim notification remove SEQ... | --all");
		for (int i = 0; i < L->npos; i++)
			if (parse_seq(L, L->pos[i], &seqs[n++]) != CLI_OK)
				return L->exit_code;
	}
	json_t *a = json_array();
	json_object_set_new(L->result, "removed", a);
	for (size_t i = 0; i < n; i++) {
		uint8_t *req = NULL;
		size_t len = 0;
		esim_err err = rsp_remove_notification_req(seqs[i], &req, &len);
		int rc = lpa_es10_simple(L, RSP_ES10_REMOVE_NOTIFICATION, err, req, len, NULL);
		if (rc != CLI_OK)
			return rc;
		json_array_append_new(a, json_integer((json_int_t)seqs[i]));
		if (!L->o.json)
			printf(_("notification %llu removed\n"), (unsigned long long)seqs[i]);
	}
	if (!L->o.json && n == 0)
		printf("%s\n", _("no pending notifications"));
	return CLI_OK;
}

int cmd_notification(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		notif_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? CLI_EXIT_USAGE : CLI_OK;
	}
	static const struct option remove_opts[] = {
	    {"all", no_argument, NULL, OPT_ALL},
	    {NULL, 0, NULL, 0},
	};
	const char *sub = argv[1];
	struct lpa L;
	bool all = false;
	int rc;
	if (strcmp(sub, "list") == 0) {
		rc = lpa_init(&L, "notification list", argc, argv, 2, NULL, NULL, NULL);
		if (rc == CLI_OK)
			notif_list(&L);
	} else if (strcmp(sub, "process") == 0) {
		rc = lpa_init(&L, "notification process", argc, argv, 2, NULL, NULL, NULL);
		if (rc == CLI_OK)
			notif_process(&L);
	} else if (strcmp(sub, "remove") == 0) {
		rc = lpa_init(&L, "notification remove", argc, argv, 2, remove_opts, all_opt, &all);
		if (rc == CLI_OK)
			notif_remove(&L, all);
	} else {
		fprintf(stderr, _("esim: unknown notification command '%s'\n"), sub);
		notif_usage(stderr);
		return CLI_EXIT_USAGE;
	}
	if (rc < 0) {
		notif_usage(stdout);
		L.exit_code = CLI_OK;
	}
	return lpa_done(&L);
}
