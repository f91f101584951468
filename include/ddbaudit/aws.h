/* How ddbaudit reaches AWS: the options every AWS client of the library
 * (S3 sources, Lambda and SQS for replay, STS and SSO for credentials)
 * takes, as the AWS CLI's flags spell them. */
#ifndef DDBAUDIT_AWS_H
#define DDBAUDIT_AWS_H

#include <stdbool.h>

/* How to reach AWS (S3 sources, Lambda, SQS). NULL or empty
 * strings mean "as the AWS CLI would find it" (environment, profile). */
struct dda_aws_opts {
	const char *endpoint_url; /* --endpoint-url */
	const char *region;	  /* --region */
	const char *profile;	  /* --profile */
	int concurrency;	  /* most transfers in flight (adaptive below); 0 = 256 */
	bool no_verify_ssl;	  /* --no-verify-ssl */
	const char *ca_bundle;	  /* --ca-bundle */
	bool versions;		  /* --versions: every version of every key */
	/* The run's stop flag (set from a signal handler), or NULL: every
	 * request to AWS made with these options, credentials' included, ends
	 * as soon as it is nonzero, whatever the peer does. Borrowed. */
	volatile int *stop;
};

#endif
