/*
 * `esim profile`: local profile management (ES10c, SGP.22 5.7.15 to
 * 5.7.21; digest 4.4, 4.5) — list, enable, disable, delete, nickname — and
 * the entry points of download (download.c) and discover (discover.c).
 * Profiles are named by ICCID or by ISD-P AID. Delete refuses an enabled
 * profile unless --disable-first, so that a typo cannot take a working
 * line away in one step.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "esim/i18n.h"
#include "lpa/lpa.h"

static void profile_usage(FILE *out)
{
	fputs(_("usage: esim profile list\n"
		"       esim profile enable ICCID|AID [--refresh]\n"
		"       esim profile disable ICCID|AID [--refresh]\n"
		"       esim profile delete ICCID|AID [--disable-first]\n"
		"       esim profile nickname ICCID NICKNAME   (\"\" clears it)\n"
		"       esim profile download ACTIVATION-CODE | --smdp ADDRESS --matching-id ID\n"
		"                             [--confirmation-code CC | --cc CC | --cc -]\n"
		"                             [--imei IMEI]   (--cc -: codes from stdin, one a\n"
		"                             line, the next one after a refused code)\n"
		"       esim profile download --discover [--smds ADDRESS] [--event ID]\n"
		"                             (the SM-DP+ and matching ID from an SM-DS event)\n"
		"       esim profile discover [--smds ADDRESS]\n\n"),
	      out);
	lpa_usage_globals(out);
}

static const char *class_name(enum rsp_profile_class c)
{
	switch (c) {
	case RSP_CLASS_TEST:
		return "test";
	case RSP_CLASS_PROVISIONING:
		return "provisioning";
	default:
		return "operational";
	}
}

static json_t *events_json(uint32_t pmo)
{
	json_t *a = json_array();
	for (unsigned i = 0; i <= RSP_EVENT_MAX; i++)
		if (pmo & RSP_PMO(i))
			json_array_append_new(a, json_string(rsp_event_name((enum rsp_event)i)));
	return a;
}

static json_t *profile_json(const struct rsp_profile_info *p)
{
	json_t *o = json_object();
	json_object_set_new(o, "iccid", p->has_iccid ? json_string(p->iccid) : json_null());
	json_object_set_new(o, "aid", p->aid_len ? lpa_jhex(p->aid, p->aid_len) : json_null());
	json_object_set_new(
	    o, "state",
	    p->has_state ? json_string(p->state == RSP_PROFILE_ENABLED ? "enabled" : "disabled")
			 : json_null());
	json_object_set_new(o, "nickname", lpa_jstr(p->nickname));
	json_object_set_new(o, "service_provider", lpa_jstr(p->spn));
	json_object_set_new(o, "name", lpa_jstr(p->name));
	json_object_set_new(o, "class", json_string(class_name(p->profile_class)));
	json_t *nc = json_array();
	for (size_t i = 0; i < p->n_notif; i++) {
		json_t *e = json_object();
		json_object_set_new(e, "events", events_json(p->notif[i].pmo));
		json_object_set_new(e, "address", json_string(p->notif[i].address));
		json_array_append_new(nc, e);
	}
	json_object_set_new(o, "notification_addresses", nc);
	json_object_set_new(o, "policy_rules", json_integer(p->has_ppr ? p->ppr : 0));
	return o;
}

static int profile_list(struct lpa *L)
{
	if (L->npos != 0)
		return lpa_fail(L, CLI_EXIT_USAGE, "profile list takes no arguments");
	struct rsp_profile_list pl;
	int rc = lpa_get_profiles(L, NULL, &pl);
	if (rc != CLI_OK)
		return rc;
	json_t *a = json_array();
	for (size_t i = 0; i < pl.n; i++)
		json_array_append_new(a, profile_json(&pl.items[i]));
	json_object_set_new(L->result, "profiles", a);
	if (!L->o.json) {
		if (pl.n == 0) {
			printf("%s\n", _("no profiles"));
		} else {
			printf("%-21s %-9s %-12s %-20s %-20s %s\n", "ICCID", "STATE", "CLASS",
			       "PROVIDER", "NAME", "NICKNAME");
			for (size_t i = 0; i < pl.n; i++) {
				const struct rsp_profile_info *p = &pl.items[i];
				printf("%-21s %-9s %-12s %-20s %-20s %s\n",
				       p->has_iccid ? p->iccid : "-",
				       p->has_state ? (p->state == RSP_PROFILE_ENABLED ? "enabled"
										       : "disabled")
						    : "-",
				       class_name(p->profile_class), p->spn ? p->spn : "-",
				       p->name ? p->name : "-", p->nickname ? p->nickname : "");
			}
		}
	}
	rsp_profile_list_free(&pl);
	return CLI_OK;
}

static int parse_ref(struct lpa *L, const char *text, struct rsp_profile_ref *ref)
{
	esim_err err = rsp_profile_ref_parse(text, ref);
	if (err != ESIM_OK)
		return lpa_fail(L, CLI_EXIT_USAGE,
				"'%s' is neither an ICCID (18..20 digits) nor an ISD-P AID (10..32 "
				"hex digits)",
				text);
	return CLI_OK;
}

/* The one profile ref names; fails with iccidOrAidNotFound's words when
 * it does not exist. */
static int find_profile(struct lpa *L, const struct rsp_profile_ref *ref, const char *text,
			struct rsp_profile_list *pl)
{
	int rc = lpa_get_profiles(L, ref, pl);
	if (rc != CLI_OK)
		return rc;
	if (pl->n == 0) {
		rc = lpa_fail(L, CLI_EXIT_CARD, "no profile %s on this eUICC", text);
		lpa_error_set(L, "result_name", json_string("iccidOrAidNotFound"));
		return rc;
	}
	return CLI_OK;
}

static void describe(struct lpa *L, const struct rsp_profile_info *p, const char *action)
{
	json_object_set_new(L->result, "iccid", p->has_iccid ? json_string(p->iccid) : json_null());
	json_object_set_new(L->result, "aid",
			    p->aid_len ? lpa_jhex(p->aid, p->aid_len) : json_null());
	json_object_set_new(L->result, "action", json_string(action));
	if (!L->o.json) {
		const char *iccid = p->has_iccid ? p->iccid : "?";
		if (!strcmp(action, "enabled"))
			printf(_("profile %s enabled\n"), iccid);
		else if (!strcmp(action, "disabled"))
			printf(_("profile %s disabled\n"), iccid);
		else if (!strcmp(action, "deleted"))
			printf(_("profile %s deleted\n"), iccid);
		else
			printf("profile %s %s\n", iccid, action);
	}
}

static int enable_disable(struct lpa *L, bool enable, bool refresh)
{
	if (L->npos != 1)
		return lpa_fail(L, CLI_EXIT_USAGE, "usage: esim profile %s ICCID|AID [--refresh]",
				enable ? "enable" : "disable");
	struct rsp_profile_ref ref;
	int rc = parse_ref(L, L->pos[0], &ref);
	if (rc != CLI_OK)
		return rc;
	uint8_t *req = NULL;
	size_t len = 0;
	esim_err err = enable ? rsp_enable_profile_req(&ref, refresh, &req, &len)
			      : rsp_disable_profile_req(&ref, refresh, &req, &len);
	rc = lpa_es10_simple(L, enable ? RSP_ES10_ENABLE_PROFILE : RSP_ES10_DISABLE_PROFILE, err,
			     req, len, NULL);
	if (rc != CLI_OK)
		return rc;
	struct rsp_profile_list pl;
	if (find_profile(L, &ref, L->pos[0], &pl) == CLI_OK) {
		describe(L, &pl.items[0], enable ? "enabled" : "disabled");
		rsp_profile_list_free(&pl);
	}
	return L->exit_code;
}

static int delete_profile(struct lpa *L, bool disable_first)
{
	if (L->npos != 1)
		return lpa_fail(L, CLI_EXIT_USAGE,
				"usage: esim profile delete ICCID|AID [--disable-first]");
	struct rsp_profile_ref ref;
	int rc = parse_ref(L, L->pos[0], &ref);
	struct rsp_profile_list pl = {0};
	if (rc == CLI_OK)
		rc = find_profile(L, &ref, L->pos[0], &pl);
	if (rc != CLI_OK)
		return rc;
	struct rsp_profile_info *p = &pl.items[0];
	if (p->has_state && p->state == RSP_PROFILE_ENABLED) {
		if (!disable_first) {
			rc = lpa_fail(L, CLI_EXIT_USAGE,
				      "profile %s is enabled: disable it first, or pass "
				      "--disable-first to disable and delete it",
				      L->pos[0]);
			lpa_error_set(L, "result_name", json_string("profileNotInDisabledState"));
			rsp_profile_list_free(&pl);
			return rc;
		}
		uint8_t *req = NULL;
		size_t len = 0;
		esim_err err = rsp_disable_profile_req(&ref, false, &req, &len);
		rc = lpa_es10_simple(L, RSP_ES10_DISABLE_PROFILE, err, req, len, NULL);
		if (rc == CLI_OK && !L->o.json)
			printf(_("profile %s disabled\n"), L->pos[0]);
		json_object_set_new(L->result, "disabled_first", json_boolean(rc == CLI_OK));
	}
	if (rc == CLI_OK) {
		uint8_t *req = NULL;
		size_t len = 0;
		esim_err err = rsp_delete_profile_req(&ref, &req, &len);
		rc = lpa_es10_simple(L, RSP_ES10_DELETE_PROFILE, err, req, len, NULL);
	}
	if (rc == CLI_OK)
		describe(L, p, "deleted");
	rsp_profile_list_free(&pl);
	return rc;
}

static int nickname(struct lpa *L)
{
	if (L->npos != 2)
		return lpa_fail(L, CLI_EXIT_USAGE, "usage: esim profile nickname ICCID NICKNAME");
	struct rsp_profile_ref ref;
	int rc = parse_ref(L, L->pos[0], &ref);
	if (rc != CLI_OK)
		return rc;
	struct rsp_profile_list pl = {0};
	if (ref.by_aid) {
		/* SetNickname takes an ICCID: look it up from the AID */
		rc = find_profile(L, &ref, L->pos[0], &pl);
		if (rc != CLI_OK)
			return rc;
		if (!pl.items[0].has_iccid) {
			rsp_profile_list_free(&pl);
			return lpa_fail(L, CLI_EXIT_CARD, "the card reports no ICCID for %s",
					L->pos[0]);
		}
		rsp_iccid_to_bcd(pl.items[0].iccid, ref.iccid);
		rsp_profile_list_free(&pl);
	}
	uint8_t *req = NULL;
	size_t len = 0;
	esim_err err = rsp_set_nickname_req(ref.iccid, L->pos[1], &req, &len);
	if (err == ESIM_E_RSP_FIELD_SIZE || err == ESIM_E_DER_BAD_UTF8)
		return lpa_fail(L, CLI_EXIT_USAGE,
				"the nickname must be valid UTF-8 of at most 64 characters");
	rc = lpa_es10_simple(L, RSP_ES10_SET_NICKNAME, err, req, len, NULL);
	if (rc != CLI_OK)
		return rc;
	char iccid[RSP_ICCID_TEXT_MAX];
	rsp_iccid_from_bcd(ref.iccid, RSP_ICCID_LEN, iccid);
	json_object_set_new(L->result, "iccid", json_string(iccid));
	json_object_set_new(L->result, "nickname", json_string(L->pos[1]));
	if (!L->o.json) {
		if (*L->pos[1])
			printf(_("profile %s nickname set to '%s'\n"), iccid, L->pos[1]);
		else
			printf(_("profile %s nickname cleared\n"), iccid);
	}
	return CLI_OK;
}

enum { OPT_REFRESH = 0x200, OPT_DISABLE_FIRST };

struct pflags {
	bool refresh, disable_first;
};

static int pflag(struct lpa *L, int id, const char *arg, void *user)
{
	(void)L;
	(void)arg;
	struct pflags *f = user;
	if (id == OPT_REFRESH)
		f->refresh = true;
	else if (id == OPT_DISABLE_FIRST)
		f->disable_first = true;
	return CLI_OK;
}

int cmd_profile(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		profile_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? CLI_EXIT_USAGE : CLI_OK;
	}
	const char *sub = argv[1];
	if (strcmp(sub, "download") == 0) {
		for (int i = 2; i < argc; i++)
			if (strcmp(argv[i], "--discover") == 0)
				return lpa_profile_download_discover(argc, argv);
		return lpa_profile_download(argc, argv);
	}
	if (strcmp(sub, "discover") == 0)
		return lpa_profile_discover(argc, argv);
	static const struct option refresh_opt[] = {
	    {"refresh", no_argument, NULL, OPT_REFRESH},
	    {NULL, 0, NULL, 0},
	};
	static const struct option delete_opt[] = {
	    {"disable-first", no_argument, NULL, OPT_DISABLE_FIRST},
	    {NULL, 0, NULL, 0},
	};
	struct pflags f = {false, false};
	struct lpa L;
	char name[64];
	snprintf(name, sizeof name, "profile %s", sub);
	int rc;
	if (strcmp(sub, "list") == 0) {
		rc = lpa_init(&L, "profile list", argc, argv, 2, NULL, NULL, NULL);
		if (rc == CLI_OK)
			profile_list(&L);
	} else if (strcmp(sub, "enable") == 0 || strcmp(sub, "disable") == 0) {
		rc = lpa_init(&L, sub[0] == 'e' ? "profile enable" : "profile disable", argc, argv,
			      2, refresh_opt, pflag, &f);
		if (rc == CLI_OK)
			enable_disable(&L, sub[0] == 'e', f.refresh);
	} else if (strcmp(sub, "delete") == 0) {
		rc = lpa_init(&L, "profile delete", argc, argv, 2, delete_opt, pflag, &f);
		if (rc == CLI_OK)
			delete_profile(&L, f.disable_first);
	} else if (strcmp(sub, "nickname") == 0) {
		rc = lpa_init(&L, "profile nickname", argc, argv, 2, NULL, NULL, NULL);
		if (rc == CLI_OK)
			nickname(&L);
	} else {
		fprintf(stderr, _("esim: unknown profile command '%s'\n"), sub);
		profile_usage(stderr);
		return CLI_EXIT_USAGE;
	}
	if (rc < 0) {
		profile_usage(stdout);
		L.exit_code = CLI_OK;
	}
	return lpa_done(&L);
}
