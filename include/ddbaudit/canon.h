/* DynamoDB AttributeValues: validation by DynamoDB's rules, the canonical
 * serialization that makes equal-by-value images byte-identical, digests,
 * item keys, and attribute-level diffs. The byte format is specified in
 * docs/canonical-form.md; that document and this code must agree.
 *
 * Values arrive as jansson trees in DynamoDB JSON ({"S":"x"}, {"N":"1"}, ...).
 * Every json_t argument is borrowed. Functions that take `why` append a
 * one-line reason (naming the attribute path) when they return DDA_EFORMAT. */
#ifndef DDBAUDIT_CANON_H
#define DDBAUDIT_CANON_H

#include <jansson.h>
#include <stdbool.h>
#include "ddbaudit/common.h"

/* DynamoDB's limits. */
#define DDA_NUMBER_MAX_DIGITS 38  /* significant digits of an N */
#define DDA_NUMBER_MIN_EXP (-130) /* smallest magnitude 1E-130 */
#define DDA_NUMBER_MAX_EXP 125	  /* largest 9.99..E+125 (38 digits) */
#define DDA_MAX_NESTING 32	  /* levels of M/L nesting in an item */

/* Serialization tags (one byte before every value). */
enum dda_av_tag {
	DDA_TAG_S = 0x01,
	DDA_TAG_N = 0x02,
	DDA_TAG_B = 0x03,
	DDA_TAG_BOOL = 0x04,
	DDA_TAG_NULL = 0x05,
	DDA_TAG_M = 0x06,
	DDA_TAG_L = 0x07,
	DDA_TAG_SS = 0x08,
	DDA_TAG_NS = 0x09,
	DDA_TAG_BS = 0x0a,
};

/* Validates the DynamoDB number string s[0..n) and appends its canonical
 * decimal form to out: optional '-', integer digits without leading zeros,
 * then '.' and fraction digits without trailing zeros when the fraction is
 * not zero; no exponent; "-0" is "0". Accepted syntax:
 * [+-]? (digits [. digits?] | . digits) ([eE] [+-]? digits)?
 * Returns 0, DDA_EFORMAT (with why) or a buffer error. */
DDA_API int dda_number_canon(const char *s, size_t n, struct dda_buf *out, struct dda_buf *why);

/* Decodes standard base64 (RFC 4648 alphabet, '=' padding required, no
 * whitespace) and appends the bytes to out. Returns 0, DDA_EFORMAT or a
 * buffer error. */
DDA_API int dda_base64_decode(const char *s, size_t n, struct dda_buf *out);
/* Appends the standard base64 encoding of p[0..n) to out. */
DDA_API int dda_base64_encode(const void *p, size_t n, struct dda_buf *out);

/* Validates one AttributeValue at nesting depth `depth` (an attribute of the
 * item itself is at depth 1) and appends its canonical serialization to out.
 * `path` names the value in messages (e.g. "NewImage.Tags"). */
DDA_API int dda_canon_value(const json_t *av, int depth, const char *path, struct dda_buf *out,
			    struct dda_buf *why);

/* Validates an item image (a JSON object of attribute name -> AttributeValue)
 * and appends its serialization as an M value to out. */
DDA_API int dda_canon_image(const json_t *image, const char *path, struct dda_buf *out,
			    struct dda_buf *why);

/* SHA-256 of an image's serialization. Returns 0, DDA_EFORMAT or an error. */
#define DDA_DIGEST_LEN 32
DDA_API int dda_canon_digest(const json_t *image, const char *path, uint8_t out[DDA_DIGEST_LEN],
			     struct dda_buf *why);

/* The canonical item key: an M serialization of the key attributes only.
 * Key attributes must be S, N or B, and S and B must not be empty.
 * `names` lists the key attribute names; with names == NULL every attribute
 * of `keys` is a key attribute (the stream dialect's Keys object). Missing
 * attributes are DDA_EFORMAT. */
DDA_API int dda_canon_key(const json_t *keys, const char *const *names, size_t nnames,
			  const char *path, struct dda_buf *out, struct dda_buf *why);

/* Renders a serialization (as produced above) back into DynamoDB JSON:
 * an M renders as the plain attribute map ({"UserId":{"S":"u"}}), as Keys
 * and images are written. Returns a new reference, or NULL if the bytes are
 * not a valid serialization. */
DDA_API json_t *dda_canon_to_json(const void *ser, size_t n);

/* Renders an item key serialization as text for humans and for --key:
 * "UserId=user 7,ActivityId=act-39". Values that are not S carry their type
 * ("Count=N:5"); ',', '=', ':' and '\' inside names or values are escaped
 * with '\', and control characters (NUL included) are written "\xHH", so
 * the text is one line, never cut at a NUL, and parses back to the key. */
DDA_API int dda_canon_key_text(const void *ser, size_t n, struct dda_buf *out);

/* Parses the text form above (types default to S; "\xHH" is the byte HH,
 * any other escaped character stands for itself) or DynamoDB JSON (where
 * "\u0000" is allowed) into a key serialization. Returns 0 or DDA_EFORMAT (with why). */
DDA_API int dda_canon_key_parse(const char *text, struct dda_buf *out, struct dda_buf *why);

/* Attribute-level difference between two images (either may be NULL, as
 * for an absent item): {"added": {name: AV}, "removed": {name: AV},
 * "changed": {name: {"expected": AV, "found": AV}}}, where "added" holds
 * attributes found but not expected. Values are compared by canonical form.
 * Returns a new reference or NULL on allocation failure. */
DDA_API json_t *dda_canon_diff(const json_t *expected, const json_t *found);

#endif
