/* S3 XML answers: ListObjectsV2 and ListObjectVersions pages (url-encoded
 * keys, continuation, delete markers), versioning status, error bodies, and
 * refusal of DOCTYPEs (no entity expansion, no billion laughs). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "aws/s3_xml.h"
#include "aws/sts.h"

static void test_list_v2(void **state)
{
	const char *page1 =
	    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	    "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
	    "<Name>b</Name><Prefix>audit-logs%2F</Prefix><KeyCount>2</KeyCount>"
	    "<MaxKeys>2</MaxKeys><EncodingType>url</EncodingType><IsTruncated>true</IsTruncated>"
	    "<Contents><Key>audit-logs/2025/07/12/08/user+7-a%2Bb%3D%25.json</Key>"
	    "<LastModified>2025-07-12T08:27:51.000Z</LastModified>"
	    "<ETag>&quot;9b2cf535f27731c974343645a3985328&quot;</ETag><Size>512</Size>"
	    "<StorageClass>STANDARD</StorageClass></Contents>"
	    "<Contents><Key>audit-logs/2025/07/12/08/Jos%C3%A9-x.json</Key>"
	    "<LastModified>2025-07-12T08:30:00.000Z</LastModified><ETag>\"e\"</ETag>"
	    "<Size>7</Size></Contents>"
	    "<NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</"
	    "NextContinuationToken>"
	    "</ListBucketResult>";
	const char *page2 = "<ListBucketResult><EncodingType>url</EncodingType>"
			    "<IsTruncated>false</IsTruncated><Contents><Key>z</Key><Size>1</Size>"
			    "</Contents></ListBucketResult>";
	struct dda_s3_listing l = {0};
	struct dda_error err = {0};
	assert_int_equal(dda__s3_parse_listing(page1, strlen(page1), &l, &err), 0);
	assert_int_equal(l.n, 2);
	assert_true(l.truncated);
	assert_string_equal(l.v[0].key, "audit-logs/2025/07/12/08/user 7-a+b=%.json");
	assert_string_equal(l.v[0].etag, "9b2cf535f27731c974343645a3985328");
	assert_int_equal(l.v[0].size, 512);
	int64_t t;
	dda_time_parse("2025-07-12T08:27:51Z", 20, &t);
	assert_int_equal(l.v[0].last_modified, t);
	assert_string_equal(l.v[1].key, "audit-logs/2025/07/12/08/Jos\xc3\xa9-x.json");
	assert_null(l.v[1].version_id);
	assert_string_equal(l.next_token, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");
	assert_int_equal(dda__s3_parse_listing(page2, strlen(page2), &l, &err), 0);
	assert_int_equal(l.n, 3);
	assert_false(l.truncated);
	assert_null(l.next_token);
	dda__s3_listing_release(&l);
}

static void test_versions(void **state)
{
	const char *xml = "<ListVersionsResult><EncodingType>url</EncodingType>"
			  "<IsTruncated>true</IsTruncated><NextKeyMarker>k%20y</NextKeyMarker>"
			  "<NextVersionIdMarker>v/2+</NextVersionIdMarker>"
			  "<Version><Key>k</Key><VersionId>v3</VersionId><IsLatest>true</IsLatest>"
			  "<LastModified>2025-07-12T09:00:00.000Z</LastModified><ETag>\"a\"</ETag>"
			  "<Size>3</Size></Version>"
			  "<DeleteMarker><Key>gone</Key><VersionId>dm1</VersionId>"
			  "<IsLatest>true</IsLatest></DeleteMarker>"
			  "<Version><Key>k</Key><VersionId>v2</VersionId><IsLatest>false</IsLatest>"
			  "<Size>2</Size></Version></ListVersionsResult>";
	struct dda_s3_listing l = {0};
	struct dda_error err = {0};
	assert_int_equal(dda__s3_parse_listing(xml, strlen(xml), &l, &err), 0);
	assert_int_equal(l.n, 3);
	assert_string_equal(l.v[0].version_id, "v3");
	assert_true(l.v[0].is_latest);
	assert_true(l.v[1].delete_marker);
	assert_string_equal(l.v[1].key, "gone");
	assert_false(l.v[2].is_latest);
	assert_string_equal(l.next_key_marker, "k y");
	assert_string_equal(l.next_version_marker, "v/2+");
	dda__s3_listing_release(&l);
}

static void test_versioning_and_errors(void **state)
{
	char st[32], code[64], msg[256];
	struct dda_error err = {0};
	const char *on =
	    "<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>";
	assert_int_equal(dda__s3_parse_value(on, strlen(on), "Status", st, sizeof(st), &err), 0);
	assert_string_equal(st, "Enabled");
	const char *never = "<VersioningConfiguration/>";
	assert_int_equal(dda__s3_parse_value(never, strlen(never), "Status", st, sizeof(st), &err),
			 0);
	assert_string_equal(st, "");
	/* Object Lock: the first element of the name wins, wherever it is. */
	const char *lock = "<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled>"
			   "<Rule><DefaultRetention><Mode>COMPLIANCE</Mode><Days>365</Days>"
			   "</DefaultRetention></Rule></ObjectLockConfiguration>";
	assert_int_equal(dda__s3_parse_value(lock, strlen(lock), "Mode", st, sizeof(st), &err), 0);
	assert_string_equal(st, "COMPLIANCE");
	assert_int_equal(dda__s3_parse_value(lock, strlen(lock), "Days", st, sizeof(st), &err), 0);
	assert_string_equal(st, "365");
	/* A value longer than the room is cut, never overrun. */
	char tiny[4];
	assert_int_equal(
	    dda__s3_parse_value(lock, strlen(lock), "ObjectLockEnabled", tiny, sizeof(tiny), &err),
	    0);
	assert_string_equal(tiny, "Ena");
	const char *e = "<Error><Code>SignatureDoesNotMatch</Code><Message>The request signature "
			"we calculated does not match</Message></Error>";
	dda__s3_parse_error(e, strlen(e), code, sizeof(code), msg, sizeof(msg));
	assert_string_equal(code, "SignatureDoesNotMatch");
	assert_non_null(strstr(msg, "does not match"));
}

static void test_hostile(void **state)
{
	struct dda_s3_listing l = {0};
	struct dda_error err = {0};
	const char *laughs =
	    "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">"
	    "<!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">]>"
	    "<ListBucketResult><Contents><Key>&lol2;</Key></Contents>"
	    "</ListBucketResult>";
	assert_int_equal(dda__s3_parse_listing(laughs, strlen(laughs), &l, &err), DDA_EFORMAT);
	assert_non_null(strstr(err.msg, "DOCTYPE"));
	assert_int_equal(l.n, 0);
	dda_error_clear(&err);
	const char *broken = "<ListBucketResult><Contents><Key>a</Key>";
	assert_int_equal(dda__s3_parse_listing(broken, strlen(broken), &l, &err), DDA_EFORMAT);
	dda__s3_listing_release(&l);
}

/* A GetCallerIdentity answer is taken only whole and plausible: what the
 * report prints as the caller must be what STS said. */
static void refused(const char *xml)
{
	struct dda_sts_identity id;
	struct dda_error err = {0};
	assert_int_equal(dda__sts_parse_identity(xml, strlen(xml), &id, &err), DDA_EFORMAT);
	assert_true(err.msg[0] != '\0');
	assert_string_equal(id.account, "");
	assert_string_equal(id.arn, "");
	assert_string_equal(id.user_id, "");
}

static void test_sts_identity(void **state)
{
	struct dda_sts_identity id;
	struct dda_error err = {0};
	const char *ok = "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/"
			 "2011-06-15/\"><GetCallerIdentityResult>"
			 "<Arn>arn:aws:sts::123456789012:assumed-role/audit/cron</Arn>"
			 "<UserId>AROAEXAMPLE:cron</UserId><Account>123456789012</Account>"
			 "</GetCallerIdentityResult></GetCallerIdentityResponse>";
	(void)state;
	assert_int_equal(dda__sts_parse_identity(ok, strlen(ok), &id, &err), 0);
	assert_string_equal(id.account, "123456789012");
	assert_string_equal(id.arn, "arn:aws:sts::123456789012:assumed-role/audit/cron");
	assert_string_equal(id.user_id, "AROAEXAMPLE:cron");
	refused("<R><Account>12345678901</Account><Arn>arn:x</Arn><UserId>u</UserId></R>");
	refused("<R><Account>1234567890ab</Account><Arn>arn:x</Arn><UserId>u</UserId></R>");
	refused("<R><Account>123456789012</Account><Arn>urn:x</Arn><UserId>u</UserId></R>");
	refused("<R><Account>123456789012</Account><Arn>arn:x</Arn><UserId>u&#10;v</UserId></R>");
	refused("<R><Account>123456789012</Account><Arn>arn:x</Arn><UserId>u</UserId>");
	refused("<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY a \"123456789012\">]><R>"
		"<Account>&a;</Account><Arn>arn:x</Arn><UserId>u</UserId></R>");
	refused("<ErrorResponse><Error><Code>InvalidClientTokenId</Code></Error></ErrorResponse>");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_list_v2),
	    cmocka_unit_test(test_versions),
	    cmocka_unit_test(test_versioning_and_errors),
	    cmocka_unit_test(test_hostile),
	    cmocka_unit_test(test_sts_identity),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
