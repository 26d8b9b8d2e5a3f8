/*
 * Message catalogues for the programs' own texts (GNU gettext): picks the
 * language from the environment and the catalogue directory, see
 * include/esim/i18n.h. No SGP.22 section: this is the user interface around
 * the LPA (SGP.22 only asks that the end user can read and confirm what the
 * LPA does, 3.1 and 4.2).
 */
#include <limits.h>
#include <locale.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "esim/i18n.h"

#ifndef ESIM_LOCALEDIR
#define ESIM_LOCALEDIR "/usr/local/share/locale"
#endif

/* The first of LC_ALL, LC_MESSAGES, LANG that is set and not empty. */
static const char *env_locale(void)
{
	const char *names[] = {"LC_ALL", "LC_MESSAGES", "LANG"};
	for (size_t i = 0; i < 3; i++) {
		const char *v = getenv(names[i]);
		if (v && *v)
			return v;
	}
	return NULL;
}

static const char *catalogue_dir(void)
{
	const char *env = getenv("ESIM_LOCALEDIR");
	if (env && *env)
		return env;
#if defined(ESIM_BUILD_DIR) && defined(ESIM_BUILD_LOCALEDIR)
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n > 0) {
		exe[n] = '\0';
		char *slash = strrchr(exe, '/');
		if (slash) {
			*slash = '\0';
			if (!strcmp(exe, ESIM_BUILD_DIR))
				return ESIM_BUILD_LOCALEDIR;
		}
	}
#endif
	return ESIM_LOCALEDIR;
}

/* Only the two categories the messages need: LC_MESSAGES picks the
 * catalogue and LC_CTYPE its character set. The others stay "C": numbers
 * and times in the C form, as scripts read the output, and no locale file
 * loaded that nothing uses (ten of them, one by one, where the system has
 * no locale-archive: measurable in a program that lives a few ms). */
static bool set_message_locale(const char *name)
{
	return setlocale(LC_CTYPE, name) && setlocale(LC_MESSAGES, name);
}

void esim_i18n_init(const char *domain)
{
	if (!set_message_locale("")) {
		/* the locale (nl_BE.UTF-8, ...) is not installed: keep UTF-8
		 * and say the language to gettext through LANGUAGE, which it
		 * reads in any locale but "C" and "POSIX" */
		set_message_locale("C.UTF-8");
		const char *l = env_locale();
		const char *have = getenv("LANGUAGE");
		if (l && strcmp(l, "C") != 0 && strcmp(l, "POSIX") != 0 && !(have && *have)) {
			char lang[64], list[140];
			snprintf(lang, sizeof lang, "%.*s", (int)strcspn(l, ".@"), l);
			/* nl_BE -> "nl_BE:nl", so a catalogue for nl serves it */
			size_t base = strcspn(lang, "_");
			if (lang[base])
				snprintf(list, sizeof list, "%s:%.*s", lang, (int)base, lang);
			else
				snprintf(list, sizeof list, "%s", lang);
			setenv("LANGUAGE", list, 1);
		}
	}
	bindtextdomain(domain, catalogue_dir());
	bind_textdomain_codeset(domain, "UTF-8");
	textdomain(domain);
}

void esim_i18n_english(void)
{
	/* gettext answers the msgid, and ignores LANGUAGE, in the "C" locale */
	setlocale(LC_MESSAGES, "C");
}
