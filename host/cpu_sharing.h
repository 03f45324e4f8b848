/* cpu_sharing.h: the default that lets several runs share one machine. CPU plugins compute with an
 * OpenMP thread pool; by default its idle threads spin for a while before sleeping, which is harmless
 * alone but, when two runs (or a run and a build) share the cores, each run's spinning threads steal the
 * cores the other's working threads need: two training runs on 2 cores fell to under a tenth of the solo
 * rate each. With the passive wait policy idle threads sleep at once; alone this costs nothing
 * measurable (bench/share.sh measures both). A user's own OMP_WAIT_POLICY or GOMP_SPINCOUNT wins. */
#ifndef EDM2_HOST_CPU_SHARING_H
#define EDM2_HOST_CPU_SHARING_H

/* Sets OMP_WAIT_POLICY=passive unless the user chose a policy. Must run before the first plugin that
 * links an OpenMP runtime is loaded (the runtime reads its settings when it is loaded); the plugin
 * loader calls it before every dlopen. */
void cpu_sharing_defaults(void);

#endif
