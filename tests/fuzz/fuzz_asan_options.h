/*
 * ASan's defaults for the fuzz targets that run on SQLite: no fill of new
 * allocations (max_malloc_fill_size=0). ASan writes 0xbe over the first
 * 4 KiB of every allocation; SQLite's page-sized allocations, handed out
 * from fresh memory while freed ones sit in the quarantine, made that a
 * page fault and a 4 KiB memset each (fuzz_euicc_es10: ~2,500 -> ~7,500
 * exec/s). The fill only makes reads of uninitialised memory repeatable;
 * ASan detects no class of bug with it. ASAN_OPTIONS still overrides.
 */
#ifndef FUZZ_ASAN_OPTIONS_H
#define FUZZ_ASAN_OPTIONS_H

const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "max_malloc_fill_size=0";
}

#endif
