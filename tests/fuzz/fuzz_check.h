/* Invariant checks for the fuzz targets. assert() is compiled out under
 * NDEBUG (a release-flags build), which would turn every target into one
 * that checks nothing; a failed CHECK always traps, and libFuzzer reports
 * the input that caused it. */
#ifndef DDA_FUZZ_CHECK_H
#define DDA_FUZZ_CHECK_H

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			__builtin_trap();                                                          \
	} while (0)

#endif
