#!/usr/bin/env bash
# Refresh po/esim.pot from the _() / N_() strings in src/lpa and merge it into
# every po/LANG.po (new messages arrive untranslated; the CTest
# i18n_catalogues fails until each has its translation). docs/i18n.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
xgettext --from-code=UTF-8 -k_ -kN_ -kngettext:1,2 -klpa_fail:3 -klpa_warn:2 \
	--flag=lpa_fail:3:c-format --flag=lpa_warn:2:c-format --add-comments=TRANSLATORS: \
	--package-name=esimkit --msgid-bugs-address=maintainers@esimkit.invalid \
	--sort-by-file -o po/esim.pot src/lpa/*.c
sed -i 's/^"Content-Type: text\/plain; charset=CHARSET\\n"/"Content-Type: text\/plain; charset=UTF-8\\n"/' po/esim.pot
for lang in nl fr zh_CN; do
	if [ -f "po/$lang.po" ]; then
		msgmerge --quiet --update --backup=none --no-fuzzy-matching "po/$lang.po" po/esim.pot
	else
		msginit --no-translator --locale="$lang.UTF-8" -i po/esim.pot -o "po/$lang.po"
	fi
done
