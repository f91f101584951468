/* DynamoDB numbers: syntax, the 38-digit and magnitude limits, and the
 * canonical decimal form. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "util/util.h"
#include "ddbaudit/canon.h"

static void expect(const char *in, const char *want)
{
	struct dda_buf out, why;
	dda_buf_init(&out, 4096);
	dda_buf_init(&why, 4096);
	int rc = dda_number_canon(in, strlen(in), &out, &why);
	if (rc)
		fail_msg("'%s' rejected: %s", in, why.ptr ? why.ptr : "");
	assert_string_equal(out.ptr, want);
	dda_buf_release(&out);
	dda_buf_release(&why);
}

static void reject(const char *in, const char *needle)
{
	struct dda_buf out, why;
	dda_buf_init(&out, 4096);
	dda_buf_init(&why, 4096);
	assert_int_equal(dda_number_canon(in, strlen(in), &out, &why), DDA_EFORMAT);
	if (needle && (!why.ptr || !strstr(why.ptr, needle)))
		fail_msg("'%s': reason '%s' lacks '%s'", in, why.ptr ? why.ptr : "", needle);
	dda_buf_release(&out);
	dda_buf_release(&why);
}

/* Plain integers are copied as they are; anything else near them (a
 * leading zero, a sign, 39 digits, more than 64 digits to gather) takes
 * the general path, with the same results as before. */
static void test_plain_integers(void **state)
{
	expect("7", "7");
	expect("10", "10");
	expect("1752278461", "1752278461");
	expect("007", "7");
	expect("+7", "7");
	expect("-10", "-10");
	expect("99999999999999999999999999999999999999", "99999999999999999999999999999999999999");
	expect("100000000000000000000000000000000000000", "100000000000000000000000000000000000000");
	reject("999999999999999999999999999999999999999", "39 significant digits");
	expect("0000000000000000000000000000000000000000000000000000000000000000001.50000000000000",
	       "1.5");
}

static void test_equal_by_value(void **state)
{
	const char *one_five[] = {"1.50", "1.5", "15E-1", "+1.5", "0015e-1", "0.15e1", "150e-2"};
	for (size_t i = 0; i < DDA_ARRAY_SIZE(one_five); i++)
		expect(one_five[i], "1.5");
	const char *zero[] = {"0", "-0", "+0", "0.000", "-0.0e10", "000", ".0", "0e999999999999"};
	for (size_t i = 0; i < DDA_ARRAY_SIZE(zero); i++)
		expect(zero[i], "0");
	expect("1E+2", "100");
	expect("-.5", "-0.5");
	expect("5.", "5");
	expect("-12.3400", "-12.34");
	expect("0.00012", "0.00012");
	expect("1.2E-5", "0.000012");
	expect("123456789012345678901234567890", "123456789012345678901234567890");
}

static void test_syntax(void **state)
{
	const char *bad[] = {"",     "+",     "-",   ".",   "1e",	"1e+",
			     "0x10", " 1",    "1 ",  "NaN", "Infinity", "1_000",
			     "1..2", "1.2.3", "--1", "e5",  "1e5.5",	"١"};
	for (size_t i = 0; i < DDA_ARRAY_SIZE(bad); i++)
		reject(bad[i], "not a number");
}

static void test_limits(void **state)
{
	char want[256];
	/* 1E-130: "0." then 129 zeros then "1". */
	memcpy(want, "0.", 2);
	memset(want + 2, '0', 129);
	memcpy(want + 131, "1", 2);
	expect("1E-130", want);
	reject("1E-131", "out of range");
	reject("9.9E-131", "out of range");
	/* 9.99..E+125 (38 nines): the nines then 125 - 37 = 88 zeros. */
	memset(want, '9', 38);
	memset(want + 38, '0', 88);
	want[126] = '\0';
	expect("9.9999999999999999999999999999999999999E+125", want);
	reject("1E+126", "out of range");
	reject("-1E+126", "out of range");
	/* 38 significant digits pass, 39 do not; zeros at either end are free. */
	expect("12345678901234567890123456789012345678", "12345678901234567890123456789012345678");
	reject("123456789012345678901234567890123456789", "significant digits");
	expect("1000000000000000000000000000000000000000",
	       "1000000000000000000000000000000000000000");
	expect("0.00000000000000000000000000000000000000000012345",
	       "0.00000000000000000000000000000000000000000012345");
	/* A huge exponent cannot overflow into range. */
	reject("1e99999999999999999999999", "out of range");
	reject("1e-99999999999999999999999", "out of range");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_equal_by_value),
	    cmocka_unit_test(test_plain_integers),
	    cmocka_unit_test(test_syntax),
	    cmocka_unit_test(test_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
