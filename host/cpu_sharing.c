/* cpu_sharing.c: the passive OpenMP wait policy as the default (see cpu_sharing.h). */
#include "cpu_sharing.h"

#include <stdlib.h>

void cpu_sharing_defaults(void) {
    if (!getenv("OMP_WAIT_POLICY") && !getenv("GOMP_SPINCOUNT")) setenv("OMP_WAIT_POLICY", "passive", 0);
}
