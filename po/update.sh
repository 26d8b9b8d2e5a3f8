#!/usr/bin/env bash
# Refresh po/esim.pot from the _() / N_() strings in src/lpa (and the lower
# layers' texts esim shows, below) and merge it into
# every po/LANG.po (new messages arrive untranslated; the CTest
# i18n_catalogues fails until each has its translation). docs/i18n.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# also the details esim shows from lower layers: the APDU drivers'
# esim_errctx_set formats and esim_strerror's texts (X(name, value, text) in
# include/esim/err.h)
xgettext --from-code=UTF-8 -k_ -kN_ -kngettext:1,2 -klpa_fail:3 -klpa_warn:2 \
	-kesim_errctx_set:2 -kX:3 --flag=esim_errctx_set:2:c-format \
	--flag=lpa_fail:3:c-format --flag=lpa_warn:2:c-format --add-comments=TRANSLATORS: \
	--package-name=esimkit --msgid-bugs-address=maintainers@esimkit.invalid \
	--sort-by-file -o po/esim.pot src/lpa/*.c src/apdu/*.c src/util/err.c include/esim/err.h
sed -i 's/^"Content-Type: text\/plain; charset=CHARSET\\n"/"Content-Type: text\/plain; charset=UTF-8\\n"/' po/esim.pot
for lang in nl fr zh_CN; do
	if [ -f "po/$lang.po" ]; then
		msgmerge --quiet --update --backup=none --no-fuzzy-matching "po/$lang.po" po/esim.pot
	else
		msginit --no-translator --locale="$lang.UTF-8" -i po/esim.pot -o "po/$lang.po"
	fi
done
