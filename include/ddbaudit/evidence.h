/* Evidence bundles (docs/evidence.md): one tar.gz holding a run's reports,
 * its manifest, SHA256SUMS over them and, when signed, SHA256SUMS.sig with
 * SIGNATURE.json; and the checks `ddbaudit evidence verify` makes of one. */
#ifndef DDBAUDIT_EVIDENCE_H
#define DDBAUDIT_EVIDENCE_H

#include <stdbool.h>
#include <stdint.h>
#include "ddbaudit/aws.h"
#include "ddbaudit/report.h"

#define DDA_BUNDLE_SUMS "SHA256SUMS"
#define DDA_BUNDLE_SIG "SHA256SUMS.sig"
#define DDA_BUNDLE_SIGNATURE "SIGNATURE.json"
#define DDA_BUNDLE_MANIFEST "manifest.ndjson"
/* sign_key's prefix that names an AWS KMS key instead of a PEM file. */
#define DDA_BUNDLE_KMS_PREFIX "kms:"

struct dda_bundle_opts {
	const char *path;		/* the bundle to write (FILE.tar.gz) */
	const char *sign_key;		/* an Ed25519 PEM private key, "kms:KEY_ID", or NULL */
	const struct dda_aws_opts *aws; /* for a KMS key; borrowed, may be NULL */
	const char *manifest_path;	/* the run's finished manifest, or NULL */
	int64_t mtime;			/* every entry's time (the run's start) */
};

/* Checks before a run that sign_key can sign: a readable, unencrypted
 * Ed25519 PEM private key, or "kms:" followed by a key id. DDA_EINVAL
 * naming the problem. */
DDA_API int dda_bundle_check_key(const char *sign_key, struct dda_error *err);

/* Writes the bundle at o->path, whole or not at all: every report
 * dda_report_write_dir writes (from info and res), the manifest, SHA256SUMS
 * (sha256sum's format, a line for every other file but the signature) and,
 * with a key, SIGNATURE.json (listed in SHA256SUMS) and SHA256SUMS.sig.
 * Entries are sorted by name, owned by uid/gid 0, mode 0644, timed
 * o->mtime, so equal inputs give equal bytes. sha256 gets the bundle's
 * SHA-256 in hex. */
DDA_API int dda_bundle_write(const struct dda_bundle_opts *o, const struct dda_report_info *info,
			     const struct dda_result *res, char sha256[65], struct dda_error *err);

/* The outcome of one check of `evidence verify`. */
enum dda_check_status {
	DDA_CHECK_OK,
	DDA_CHECK_FAIL,	 /* the check was made and does not hold */
	DDA_CHECK_ERROR, /* the check could not be made (I/O, network) */
};

struct dda_check {
	char *name;   /* "signature", "sha256 report.json", ... (owned) */
	int status;   /* enum dda_check_status */
	char *detail; /* one line: what was found (owned) */
};

struct dda_checks {
	struct dda_check *v;
	size_t n, cap;
};
DDA_API void dda_checks_release(struct dda_checks *c);
DDA_API const char *dda_check_status_name(int status);

struct dda_evidence_opts {
	const char *bundle;
	const char *pubkey;   /* --pubkey: Ed25519 PEM public key, or NULL */
	const char *kms_key;  /* --kms KEY_ID, or NULL */
	const char *previous; /* --previous: the bundle before this one, or NULL */
	bool recheck;	      /* fetch every object of the manifest again */
	struct dda_aws_opts aws;
};

/* Runs every check on a bundle, appending one result each to out (every
 * failure named). Returns 0, or DDA_ENOMEM: the outcome is in out. */
DDA_API int dda_evidence_verify(const struct dda_evidence_opts *o, struct dda_checks *out,
				struct dda_error *err);

#endif
