/* Entry point of the ddbaudit tool (being built: dispatch comes next). */
#include <stdio.h>
#include "ddbaudit/common.h"

int main(void)
{
	printf("ddbaudit %s\n", dda_version());
	return 0;
}
