/*
 * Every option and setting a program accepts is in its --help (issue 17.4).
 * The accepted names are read from the program's own source, so that a new
 * option or setting without a line in --help fails here:
 *  - esim: the global option table (global_opts in src/lpa/ctx.c);
 *  - esim-smdp, esim-operator: every key the code reads from the settings
 *    (kv_get / kv_uint / kv_limit ... (kv, "KEY")) and every "--NAME";
 *  - esim-euicc, esim-pki: every "--NAME" their parsers compare against.
 * Each program's --help (stdout and stderr) must name each one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "testutil.h"

/* Names the code refers to only to refuse them, or that are not options. */
static const char *const not_options[] = {
    "--password", /* esim-operator: refused on the command line on purpose */
    NULL,
};

static char *slurp(const char *path)
{
	size_t len = 0;
	uint8_t *p = test_read(path, &len);
	assert_non_null(p);
	char *s = malloc(len + 1);
	assert_non_null(s);
	memcpy(s, p, len);
	s[len] = '\0';
	free(p);
	return s;
}

/* prog --help, stdout and stderr together. */
static char *help_of(const char *prog)
{
	char cmd[1200];
	snprintf(cmd, sizeof cmd, "%s/%s --help 2>&1", test_bin_dir(), prog);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	size_t cap = 1 << 16, n = 0;
	char *out = malloc(cap);
	assert_non_null(out);
	size_t k;
	while ((k = fread(out + n, 1, cap - 1 - n, p)) > 0)
		n += k;
	out[n] = '\0';
	int st = pclose(p);
	assert_true(WIFEXITED(st));
	assert_int_equal(0, WEXITSTATUS(st)); /* --help is a success */
	return out;
}

struct names {
	char *v[256];
	size_t n;
};

static void add(struct names *ns, const char *s, size_t len)
{
	for (size_t i = 0; i < ns->n; i++)
		if (strlen(ns->v[i]) == len && strncmp(ns->v[i], s, len) == 0)
			return;
	for (size_t i = 0; not_options[i]; i++)
		if (strlen(not_options[i]) == len && strncmp(not_options[i], s, len) == 0)
			return;
	assert_true(ns->n < 256);
	ns->v[ns->n++] = strndup(s, len);
}

static bool name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

/* Every string literal "--name" in src. */
static void dash_literals(const char *src, struct names *ns)
{
	for (const char *p = src; (p = strstr(p, "\"--")) != NULL; p++) {
		const char *b = p + 1, *e = p + 3;
		while (name_char(*e))
			e++;
		if (*e == '"' && e > p + 3)
			add(ns, b, (size_t)(e - b));
	}
}

/* Every settings key: a literal right after "kv_<fn>(kv, " or "(&kv, ". */
static void kv_keys(const char *src, struct names *ns)
{
	for (const char *p = src; (p = strstr(p, "kv_")) != NULL; p++) {
		const char *q = p + 3;
		while ((*q >= 'a' && *q <= 'z') || *q == '_')
			q++;
		if (*q != '(')
			continue;
		q++;
		if (*q == '&')
			q++;
		if (strncmp(q, "kv, \"", 5) != 0)
			continue;
		const char *b = q + 5, *e = b;
		while (name_char(*e))
			e++;
		if (*e == '"' && e > b) {
			char dashed[80];
			snprintf(dashed, sizeof dashed, "--%.*s", (int)(e - b), b);
			add(ns, dashed, strlen(dashed));
		}
	}
}

/* Each name (a setting "--key" may be listed as "key") is in help. */
static void check(const char *prog, const struct names *ns, const char *help)
{
	size_t missing = 0;
	for (size_t i = 0; i < ns->n; i++) {
		const char *name = ns->v[i];
		bool found = false;
		for (const char *h = help; !found && (h = strstr(h, name + 2)) != NULL; h++) {
			/* a whole word: not the tail or head of a longer name */
			bool start = h == help || !name_char(h[-1]) ||
				     (h >= help + 2 && h[-1] == '-' && h[-2] == '-');
			bool end = !name_char(h[strlen(name + 2)]);
			found = start && end;
		}
		if (!found) {
			print_error("%s --help does not list %s\n", prog, name);
			missing++;
		}
	}
	assert_int_equal(0, missing);
}

static void check_program(const char *prog, const char *const *sources, bool settings)
{
	struct names ns = {.n = 0};
	for (size_t i = 0; sources[i]; i++) {
		char path[1024];
		char *src =
		    slurp(test_path(path, sizeof path, "%s/%s", test_source_dir(), sources[i]));
		dash_literals(src, &ns);
		if (settings)
			kv_keys(src, &ns);
		free(src);
	}
	assert_true(ns.n > 0); /* the scan found the program's options at all */
	char *help = help_of(prog);
	check(prog, &ns, help);
	free(help);
	for (size_t i = 0; i < ns.n; i++)
		free(ns.v[i]);
}

/* esim: the global options, from their table in ctx.c. */
static void test_esim_globals(void **state)
{
	(void)state;
	char path[1024];
	char *src = slurp(test_path(path, sizeof path, "%s/src/lpa/ctx.c", test_source_dir()));
	const char *t = strstr(src, "global_opts[] = {");
	assert_non_null(t);
	const char *end = strstr(t, "};");
	assert_non_null(end);
	struct names ns = {.n = 0};
	for (const char *p = t; (p = strstr(p, "{\"")) != NULL && p < end; p++) {
		const char *b = p + 2, *e = b;
		while (name_char(*e))
			e++;
		char dashed[80];
		snprintf(dashed, sizeof dashed, "--%.*s", (int)(e - b), b);
		add(&ns, dashed, strlen(dashed));
	}
	free(src);
	assert_true(ns.n >= 10);
	char *help = help_of("esim");
	check("esim", &ns, help);
	free(help);
	for (size_t i = 0; i < ns.n; i++)
		free(ns.v[i]);
}

static void test_smdp(void **state)
{
	(void)state;
	static const char *const src[] = {"src/smdp/main.c", NULL};
	check_program("esim-smdp", src, true);
}

static void test_operator(void **state)
{
	(void)state;
	static const char *const src[] = {"src/operator/main.c", NULL};
	check_program("esim-operator", src, true);
}

static void test_euicc(void **state)
{
	(void)state;
	static const char *const src[] = {"src/euicc/main.c", NULL};
	check_program("esim-euicc", src, false);
}

static void test_pki(void **state)
{
	(void)state;
	static const char *const src[] = {"src/pki/main.c", NULL};
	check_program("esim-pki", src, false);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_esim_globals), cmocka_unit_test(test_smdp),
	    cmocka_unit_test(test_operator),	 cmocka_unit_test(test_euicc),
	    cmocka_unit_test(test_pki),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
