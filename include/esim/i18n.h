/*
 * Translated messages for the command-line programs (GNU gettext, libintl
 * in glibc). A program calls esim_i18n_init once at the start of main; its
 * user-facing texts are then written _("...") and read from
 * LOCALEDIR/LANG/LC_MESSAGES/DOMAIN.mo (po/ in the source tree, compiled by
 * the build; docs/i18n.md). Not for log lines or protocol text.
 */
#ifndef ESIM_I18N_H
#define ESIM_I18N_H

#include <libintl.h>

#define _(s)  gettext(s)
#define N_(s) (s)

/*
 * Selects the messages of domain in the user's language: LC_ALL, else
 * LC_MESSAGES, else LANG (LANGUAGE too, as gettext reads it). The catalogues
 * come from $ESIM_LOCALEDIR when set, else from the build tree when the
 * program runs from it (tests), else from the install prefix's share/locale.
 * A language whose C locale is not installed on the machine is still used
 * for messages (the C.UTF-8 locale with LANGUAGE set from the variables).
 * Changes the process's locale and, in that case, its LANGUAGE variable:
 * call before any thread starts. Never fails: without a catalogue the texts
 * stay English.
 */
void esim_i18n_init(const char *domain);

/* English from here on, the program's catalogue and the C library's own
 * texts alike (strerror's reason inside an error's detail): for output that
 * programs read, such as `esim --json`. Same thread rule as above. */
void esim_i18n_english(void);

#endif
