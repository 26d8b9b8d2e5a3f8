/*
 * `esim chip`: what the eUICC is and how it is configured. `info` reads the
 * EID (ES10c GetEID), EUICCInfo2 (ES10b GetEUICCInfo2, digest 4.3) and the
 * configured addresses (ES10a GetEuiccConfiguredAddresses); `default-smdp`
 * sets the default SM-DP+ address (ES10a SetDefaultDpAddress); `reset`
 * erases profiles with ES10c eUICCMemoryReset after the user confirmed by
 * typing the last four digits of the EID.
 */
#define _GNU_SOURCE /* wcswidth */
#include <stdio.h>
#include <wchar.h>
#include <stdlib.h>
#include <string.h>

#include "esim/i18n.h"
#include "esim/rsp_ac.h"
#include "lpa/lpa.h"

static void chip_usage(FILE *out)
{
	fprintf(
	    out, "%s",
	    _("usage: esim chip info\n"
	      "       esim chip default-smdp ADDRESS   (\"\" clears it)\n"
	      "       esim chip reset [--keep-operational] [--keep-test] [--keep-default-smdp]\n"
	      "                       [--yes]\n\n"));
	lpa_usage_globals(out);
}

static json_t *bits_json(uint64_t mask, const char *(*name)(unsigned))
{
	json_t *a = json_array();
	for (unsigned i = 0; i < 64; i++) {
		if (!(mask & (UINT64_C(1) << i)))
			continue;
		const char *n = name(i);
		char tmp[16];
		if (n == NULL) {
			snprintf(tmp, sizeof tmp, "bit%u", i);
			n = tmp;
		}
		json_array_append_new(a, json_string(n));
	}
	return a;
}

static json_t *pkids_json(const struct rsp_pkid_list *l)
{
	json_t *a = json_array();
	for (size_t i = 0; i < l->n; i++)
		json_array_append_new(a, lpa_jhex(l->id[i], l->len[i]));
	return a;
}

static json_t *version_json(const uint8_t v[3])
{
	char t[16];
	lpa_version_text(v, t);
	return json_string(t);
}

static const char *ppr_name(unsigned bit)
{
	static const char *const n[] = {"pprUpdateControl", "ppr1", "ppr2", "ppr3"};
	return bit < 4 ? n[bit] : NULL;
}

static json_t *info2_json(const struct rsp_euicc_info2 *i)
{
	json_t *o = json_object();
	json_object_set_new(o, "profile_version", version_json(i->profile_version));
	json_object_set_new(o, "svn", version_json(i->svn));
	json_object_set_new(o, "firmware_version", version_json(i->firmware));
	if (i->has_ext_resource) {
		json_t *r = json_object();
		json_object_set_new(r, "installed_applications",
				    i->has_installed_apps
					? json_integer((json_int_t)i->installed_apps)
					: json_null());
		json_object_set_new(r, "free_nvm",
				    i->has_free_nvm ? json_integer((json_int_t)i->free_nvm)
						    : json_null());
		json_object_set_new(r, "free_volatile",
				    i->has_free_ram ? json_integer((json_int_t)i->free_ram)
						    : json_null());
		json_object_set_new(o, "ext_card_resource", r);
	} else {
		json_object_set_new(o, "ext_card_resource", json_null());
	}
	json_object_set_new(o, "uicc_capability",
			    bits_json(i->uicc_capability, rsp_uicc_capability_name));
	json_object_set_new(o, "ts102241_version",
			    i->has_ts102241 ? version_json(i->ts102241) : json_null());
	json_object_set_new(o, "globalplatform_version",
			    i->has_gp ? version_json(i->gp) : json_null());
	json_object_set_new(o, "rsp_capability",
			    bits_json(i->rsp_capability, rsp_rsp_capability_name));
	json_object_set_new(o, "ci_pkids_for_verification", pkids_json(&i->verification));
	json_object_set_new(o, "ci_pkids_for_signing", pkids_json(&i->signing));
	json_object_set_new(o, "euicc_category",
			    i->has_category ? lpa_jstr(rsp_euicc_category_name(i->category))
					    : json_null());
	json_object_set_new(o, "forbidden_profile_policy_rules",
			    i->has_forbidden_ppr ? bits_json(i->forbidden_ppr, ppr_name)
						 : json_array());
	json_object_set_new(o, "pp_version",
			    i->has_pp_version ? version_json(i->pp_version) : json_null());
	json_object_set_new(o, "sas_accreditation_number", json_string(i->sas_number));
	return o;
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

static void print_list(const char *label, json_t *a)
{
	put_label(label, 28);
	size_t i;
	json_t *v;
	if (json_array_size(a) == 0)
		printf("-");
	json_array_foreach(a, i, v) printf("%s%s", i ? ", " : "", json_string_value(v));
	printf("\n");
}

static void print_info(json_t *r)
{
	json_t *i2 = json_object_get(r, "euicc_info2");
	json_t *ad = json_object_get(r, "addresses");
	const char *dp = json_string_value(json_object_get(ad, "default_smdp"));
	const char *ds = json_string_value(json_object_get(ad, "root_smds"));
	put_label("EID", 28);
	printf("%s\n", json_string_value(json_object_get(r, "eid")));
	put_label(_("default SM-DP+"), 28);
	printf("%s\n", dp && *dp ? dp : "-");
	put_label(_("root SM-DS"), 28);
	printf("%s\n", ds && *ds ? ds : "-");
	put_label(_("SGP.22 version (svn)"), 28);
	printf("%s\n", json_string_value(json_object_get(i2, "svn")));
	put_label(_("profile package version"), 28);
	printf("%s\n", json_string_value(json_object_get(i2, "profile_version")));
	put_label(_("firmware version"), 28);
	printf("%s\n", json_string_value(json_object_get(i2, "firmware_version")));
	json_t *ext = json_object_get(i2, "ext_card_resource");
	if (json_is_object(ext)) {
		json_t *nvm = json_object_get(ext, "free_nvm");
		json_t *ram = json_object_get(ext, "free_volatile");
		json_t *apps = json_object_get(ext, "installed_applications");
		if (json_is_integer(nvm)) {
			put_label(_("free memory (NVM)"), 28);
			printf(_("%lld bytes\n"), (long long)json_integer_value(nvm));
		}
		if (json_is_integer(ram)) {
			put_label(_("free memory (volatile)"), 28);
			printf(_("%lld bytes\n"), (long long)json_integer_value(ram));
		}
		if (json_is_integer(apps)) {
			put_label(_("installed applications"), 28);
			printf("%lld\n", (long long)json_integer_value(apps));
		}
	}
	print_list(_("UICC capabilities"), json_object_get(i2, "uicc_capability"));
	print_list(_("RSP capabilities"), json_object_get(i2, "rsp_capability"));
	print_list(_("CI PKIDs (verification)"), json_object_get(i2, "ci_pkids_for_verification"));
	print_list(_("CI PKIDs (signing)"), json_object_get(i2, "ci_pkids_for_signing"));
	const char *cat = json_string_value(json_object_get(i2, "euicc_category"));
	if (cat) {
		put_label(_("eUICC category"), 28);
		printf("%s\n", cat);
	}
	const char *pp = json_string_value(json_object_get(i2, "pp_version"));
	if (pp) {
		put_label(_("protection profile version"), 28);
		printf("%s\n", pp);
	}
	const char *sas = json_string_value(json_object_get(i2, "sas_accreditation_number"));
	put_label(_("SAS accreditation"), 28);
	printf("%s\n", sas && *sas ? sas : "-");
}

static int chip_info(struct lpa *L)
{
	char eid[RSP_EID_DIGITS + 1];
	int rc = lpa_get_eid(L, eid);
	if (rc != CLI_OK)
		return rc;
	json_object_set_new(L->result, "eid", json_string(eid));

	uint8_t *req = NULL;
	size_t len = 0;
	esim_buf resp = ESIM_BUF_INIT;
	esim_err err = rsp_es10_empty_req(RSP_ES10_GET_EUICC_INFO2, &req, &len);
	rc = lpa_es10_owned(L, err, req, len, &resp);
	if (rc == CLI_OK) {
		struct rsp_euicc_info2 i2;
		err = rsp_euicc_info2_parse(resp.data, resp.len, &i2);
		if (err != ESIM_OK)
			rc = lpa_fail_err(L, err, CLI_EXIT_CARD, "GetEUICCInfo2");
		else
			json_object_set_new(L->result, "euicc_info2", info2_json(&i2));
	}
	if (rc == CLI_OK) {
		err = rsp_es10_empty_req(RSP_ES10_GET_ADDRESSES, &req, &len);
		rc = lpa_es10_owned(L, err, req, len, &resp);
	}
	if (rc == CLI_OK) {
		struct rsp_addresses a;
		err = rsp_get_addresses_parse(resp.data, resp.len, &a);
		if (err != ESIM_OK) {
			rc = lpa_fail_err(L, err, CLI_EXIT_CARD, "GetEuiccConfiguredAddresses");
		} else {
			json_t *o = json_object();
			json_object_set_new(o, "default_smdp", lpa_jstr(a.default_dp));
			json_object_set_new(o, "root_smds", lpa_jstr(a.root_ds));
			json_object_set_new(L->result, "addresses", o);
			rsp_addresses_free(&a);
		}
	}
	esim_buf_free(&resp);
	if (rc == CLI_OK && !L->o.json)
		print_info(L->result);
	return rc;
}

static int chip_default_smdp(struct lpa *L)
{
	if (L->npos != 1)
		return lpa_fail(L, CLI_EXIT_USAGE, "usage: esim chip default-smdp ADDRESS");
	const char *addr = L->pos[0];
	const char *why = NULL;
	if (*addr != '\0' && rsp_ac_check_address(addr, &why) != ESIM_OK)
		return lpa_fail(L, CLI_EXIT_USAGE, "invalid SM-DP+ address '%s': %s", addr, why);
	uint8_t *req = NULL;
	size_t len = 0;
	esim_err err = rsp_set_default_dp_req(addr, &req, &len);
	int rc = lpa_es10_simple(L, RSP_ES10_SET_DEFAULT_DP, err, req, len, NULL);
	if (rc == CLI_OK) {
		json_object_set_new(L->result, "default_smdp", json_string(addr));
		if (!L->o.json) {
			if (*addr)
				printf(_("default SM-DP+ address set to %s\n"), addr);
			else
				printf("%s\n", _("default SM-DP+ address cleared"));
		}
	}
	return rc;
}

struct reset_opts {
	uint32_t options;
};

enum { OPT_KEEP_OP = 0x200, OPT_KEEP_TEST, OPT_KEEP_DP };

static int reset_opt(struct lpa *L, int id, const char *arg, void *user)
{
	(void)L;
	(void)arg;
	struct reset_opts *r = user;
	if (id == OPT_KEEP_OP)
		r->options &= ~RSP_RESET_OPERATIONAL;
	else if (id == OPT_KEEP_TEST)
		r->options &= ~RSP_RESET_TEST;
	else if (id == OPT_KEEP_DP)
		r->options &= ~RSP_RESET_DEFAULT_SMDP;
	return CLI_OK;
}

static int chip_reset(struct lpa *L, uint32_t options)
{
	if (options == 0)
		return lpa_fail(L, CLI_EXIT_USAGE, "nothing to reset: every part was kept");
	char eid[RSP_EID_DIGITS + 1];
	int rc = lpa_get_eid(L, eid);
	if (rc != CLI_OK)
		return rc;
	if (!L->o.yes) {
		if (!L->stdin_tty)
			return lpa_fail(L, CLI_EXIT_USAGE,
					"chip reset erases profiles: confirm with --yes when not "
					"running on a terminal");
		char q[256], answer[64];
		snprintf(q, sizeof q,
			 _("This erases %s%s%son the eUICC %s.\nType the last 4 digits of the "
			   "EID to confirm: "),
			 options & RSP_RESET_OPERATIONAL ? _("all operational profiles, ") : "",
			 options & RSP_RESET_TEST ? _("test profiles, ") : "",
			 options & RSP_RESET_DEFAULT_SMDP ? _("the default SM-DP+ address ") : "",
			 eid);
		if (!lpa_prompt(L, q, false, answer, sizeof answer) ||
		    strcmp(answer, eid + RSP_EID_DIGITS - 4) != 0)
			return lpa_fail(L, CLI_EXIT_FAILURE, "not confirmed: nothing was erased");
	}
	uint8_t *req = NULL;
	size_t len = 0;
	esim_err err = rsp_memory_reset_req(options, &req, &len);
	int64_t code = 0;
	rc = lpa_es10_simple(L, RSP_ES10_MEMORY_RESET, err, req, len, &code);
	if (rc != CLI_OK)
		return rc;
	if (code != 0 && code != 1)
		return lpa_fail_card_result(L, RSP_ES10_MEMORY_RESET, code);
	json_object_set_new(L->result, "eid", json_string(eid));
	json_object_set_new(L->result, "result", json_string(code == 0 ? "ok" : "nothingToDelete"));
	if (!L->o.json)
		printf("%s\n", code == 0 ? _("eUICC memory reset") : _("nothing to delete"));
	return CLI_OK;
}

int cmd_chip(int argc, char **argv)
{
	struct lpa L;
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		chip_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? CLI_EXIT_USAGE : CLI_OK;
	}
	const char *sub = argv[1];
	static const struct option reset_opts_tbl[] = {
	    {"keep-operational", no_argument, NULL, OPT_KEEP_OP},
	    {"keep-test", no_argument, NULL, OPT_KEEP_TEST},
	    {"keep-default-smdp", no_argument, NULL, OPT_KEEP_DP},
	    {NULL, 0, NULL, 0},
	};
	struct reset_opts ro = {RSP_RESET_OPERATIONAL | RSP_RESET_TEST | RSP_RESET_DEFAULT_SMDP};
	int rc;
	if (strcmp(sub, "info") == 0) {
		rc = lpa_init(&L, "chip info", argc, argv, 2, NULL, NULL, NULL);
		if (rc == CLI_OK && L.npos != 0)
			rc = lpa_fail(&L, CLI_EXIT_USAGE, "chip info takes no arguments");
		if (rc == CLI_OK)
			chip_info(&L);
	} else if (strcmp(sub, "default-smdp") == 0) {
		rc = lpa_init(&L, "chip default-smdp", argc, argv, 2, NULL, NULL, NULL);
		if (rc == CLI_OK)
			chip_default_smdp(&L);
	} else if (strcmp(sub, "reset") == 0) {
		rc = lpa_init(&L, "chip reset", argc, argv, 2, reset_opts_tbl, reset_opt, &ro);
		if (rc == CLI_OK)
			chip_reset(&L, ro.options);
	} else {
		fprintf(stderr, _("esim: unknown chip command '%s'\n"), sub);
		chip_usage(stderr);
		return CLI_EXIT_USAGE;
	}
	if (rc < 0) { /* --help */
		chip_usage(stdout);
		L.exit_code = CLI_OK;
	}
	return lpa_done(&L);
}
