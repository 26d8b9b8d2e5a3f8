#!/usr/bin/env bash
# esim speaks the user's language (CTest i18n_esim): the messages come from
# po/LANG.po compiled into BUILD/locale, chosen by LC_ALL, else LC_MESSAGES,
# else LANG, whether or not that locale is installed on the machine; a
# language without a catalogue, C and POSIX stay English.
#
#   tests/i18n/esim_lang.sh BUILD_DIR
set -uo pipefail
BUILD="$(cd "${1:?usage: esim_lang.sh BUILD_DIR}" && pwd)"
ESIM="$BUILD/esim"
fail=0

# run LABEL EXPECTED-SUBSTRING ENV... -- ARGS...: esim's stdout+stderr must
# contain the text
check() {
	local label="$1" want="$2"
	shift 2
	local envs=()
	while [ "$1" != "--" ]; do
		envs+=("$1")
		shift
	done
	shift
	local out
	out="$(env -u LANGUAGE -u LC_ALL -u LC_MESSAGES -u LANG -u ESIM_LOCALEDIR "${envs[@]}" "$ESIM" "$@" 2>&1)"
	if [[ "$out" != *"$want"* ]]; then
		echo "i18n_esim: FAILED: $label: expected '$want' in:" >&2
		printf '%s\n' "$out" | head -n 5 >&2
		fail=1
	else
		echo "i18n_esim: ok: $label"
	fi
}

if [ ! -x "$ESIM" ]; then
	echo "i18n_esim: FAILED: $ESIM not built" >&2
	exit 1
fi
for l in nl fr zh_CN; do
	if [ ! -f "$BUILD/locale/$l/LC_MESSAGES/esim.mo" ]; then
		echo "i18n_esim: FAILED: $BUILD/locale/$l/LC_MESSAGES/esim.mo not built (msgfmt, Debian package gettext)" >&2
		exit 1
	fi
done

check "LANG=nl_BE.UTF-8, unknown command" "esim: onbekende opdracht 'bogus'" LANG=nl_BE.UTF-8 -- bogus
check "LANG=fr_BE.UTF-8, --help" "usage : esim [options globales] <commande>" LANG=fr_BE.UTF-8 -- --help
check "LANG=fr_BE.UTF-8, command summaries" "désactiver + supprimer un profil" LANG=fr_BE.UTF-8 -- --help
check "LANG=zh_CN.UTF-8, der dump of a missing file" "esim der dump：无法读取 /nonexistent/x.der" \
	LANG=zh_CN.UTF-8 -- der dump /nonexistent/x.der
check "LC_ALL wins over LANG" "usage : esim [options globales]" LANG=nl_BE.UTF-8 LC_ALL=fr_BE.UTF-8 -- --help
check "LC_MESSAGES wins over LANG" "esim：未知命令 'bogus'" LANG=nl_BE.UTF-8 LC_MESSAGES=zh_CN.UTF-8 -- bogus
check "nl without a region" "gebruik: esim [algemene opties]" LANG=nl -- --help
check "an error of a command (lpa_fail)" "esim: profile list neemt geen argumenten" \
	LANG=nl_BE.UTF-8 -- profile list extra
check "the global options in --help" "options globales (avant le nom de la commande" LANG=fr_BE.UTF-8 -- chip --help
# --json: the document stays English for scripts, stderr speaks the language
json="$(env -u LC_ALL -u LC_MESSAGES -u LANGUAGE LANG=zh_CN.UTF-8 "$ESIM" --json profile list extra 2>/dev/null)"
if [[ "$json" == *'"message": "profile list takes no arguments"'* ]]; then
	echo "i18n_esim: ok: --json message stays English"
else
	echo "i18n_esim: FAILED: --json message not English: $json" >&2
	fail=1
fi
# the detail of a lower layer (the APDU driver's esim_errctx, esim_strerror)
# is in the language too: no eUICC listens on the socket
nosock="unix:/nonexistent/esim-i18n.sock"
check "nl: the socket driver's detail" \
	"kan geen verbinding maken met $nosock (" LANG=nl_BE.UTF-8 -- --socket "$nosock" chip info
check "nl: the detail's hint" "): daar luistert niets: draait esim-euicc? (start het met --listen SPEC" \
	LANG=nl_BE.UTF-8 -- --socket "$nosock" chip info
check "fr: the socket driver's detail" "impossible de se connecter à $nosock (" \
	LANG=fr_BE.UTF-8 -- --socket "$nosock" chip info
check "fr: the detail's hint" ") : rien n'y écoute : esim-euicc tourne-t-il ?" \
	LANG=fr_BE.UTF-8 -- --socket "$nosock" chip info
check "zh_CN: the socket driver's detail" "无法连接到 $nosock（" LC_ALL=zh_CN.UTF-8 -- --socket "$nosock" chip info
check "zh_CN: the detail's hint" "）：那里没有程序在监听：esim-euicc 在运行吗？" \
	LC_ALL=zh_CN.UTF-8 -- --socket "$nosock" chip info
check "fr: a bad socket option (esim_errctx, ESIM_E_ARG)" \
	"la seule option après l'adresse est timeout=MS (1..3600000)" \
	LANG=fr_BE.UTF-8 -- --socket "$nosock,timeout=x" chip info
check "zh_CN: esim_strerror" "无法读取 /nonexistent/x.der：文件或套接字读写失败" \
	LANG=zh_CN.UTF-8 -- der dump /nonexistent/x.der
check "C: the driver's detail stays English" "nothing listens there: is esim-euicc running?" \
	LANG=C -- --socket "$nosock" chip info
json="$(env -u LC_ALL -u LC_MESSAGES -u LANGUAGE LANG=nl_BE.UTF-8 "$ESIM" --json --socket "$nosock" chip info 2>/dev/null)"
if [[ "$json" == *"cannot reach the eUICC (socket transport): cannot connect to $nosock ("*"): nothing listens there: is esim-euicc running? (start it with"* ]]; then
	echo "i18n_esim: ok: --json keeps the driver's detail in English"
else
	echo "i18n_esim: FAILED: --json detail not English: $json" >&2
	fail=1
fi
# --json is English through and through: the C library's own text for the
# system's reason (strerror) inside a detail too, where glibc has it in the
# user's language (libc-l10n; scripts/deps.sh installs it)
libc_nl=/usr/share/locale/nl/LC_MESSAGES/libc.mo
if [ -f "$libc_nl" ]; then
	check "nl: the system's reason in Dutch on the terminal" "Bestand of map bestaat niet" \
		LANG=nl_BE.UTF-8 -- --socket "$nosock" chip info
	json="$(env -u LC_ALL -u LC_MESSAGES -u LANGUAGE LANG=nl_BE.UTF-8 "$ESIM" --json --socket "$nosock" chip info 2>/dev/null)"
	if [[ "$json" == *"(No such file or directory)"* && "$json" != *"Bestand"* ]]; then
		echo "i18n_esim: ok: --json keeps the system's reason in English"
	else
		echo "i18n_esim: FAILED: --json carries a translated system reason: $json" >&2
		fail=1
	fi
elif [ "${CI:-}" = true ]; then
	echo "i18n_esim: FAILED: no $libc_nl (libc-l10n, scripts/deps.sh)" >&2
	fail=1
else
	echo "i18n_esim: not checked: --json and the C library's texts (no $libc_nl)"
fi
check "German has no catalogue: English" "esim: unknown command 'bogus'" LANG=de_DE.UTF-8 -- bogus
check "C: English" "usage: esim [global options] <command>" LANG=C -- --help
check "nothing set: English" "esim: unknown command 'bogus'" -- bogus
check "ESIM_LOCALEDIR without catalogues: English" "esim: unknown command 'bogus'" \
	LANG=nl_BE.UTF-8 ESIM_LOCALEDIR=/nonexistent -- bogus
if [ "$fail" -ne 0 ]; then
	echo "i18n_esim: FAILED" >&2
	exit 1
fi
echo "i18n_esim: all passed"
