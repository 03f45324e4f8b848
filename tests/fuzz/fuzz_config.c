/* fuzz_config.c: INI configs as edm2host reads them: the input is split ("\n--8<--\n") into main.ini,
 * base.ini (which main.ini may name in `extends`, and which may extend itself or main.ini) and --set
 * lines; the result (its `[backend] plugin = auto` resolved) is validated against the plugins of the build
 * tree and every plugin it names is instantiated once, as `edm2host check` does. [plugins] path/load are validated but never followed. */
#include "backend_auto.h"
#include "config.h"
#include "fuzz_util.h"
#include "plugin_check.h"
#include "validate.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fuzz_dir();
    fuzz_registry();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *part[3];
    size_t len[3];
    int n = fuzz_split(data, size, part, len, 3);
    char main_path[128], base_path[128];
    fuzz_write("main.ini", part[0], len[0], main_path, sizeof main_path);
    fuzz_write("base.ini", n > 1 ? part[1] : (const uint8_t *)"", n > 1 ? len[1] : 0, base_path, sizeof base_path);
    cfg c = {0};
    edm2_err err;
    int rc = cfg_load(&c, main_path, &err);
    if (!rc && n > 2) { /* one --set per line */
        char *sets = malloc(len[2] + 1);
        memcpy(sets, part[2], len[2]);
        sets[len[2]] = 0;
        char *save = NULL;
        for (char *s = strtok_r(sets, "\n", &save); s && !rc; s = strtok_r(NULL, "\n", &save)) rc = cfg_set(&c, s, &err);
        free(sets);
    }
    run_config r;
    char note[480];
    if (!rc) rc = backend_resolve_auto(&c, fuzz_registry(), note, sizeof note, &err);
    if (!rc) rc = config_validate(&c, fuzz_registry(), &r, &err);
    if (!rc) rc = config_instantiate(&r, NULL, &err);
    if (rc) fuzz_one_line(&err);
    cfg_free(&c);
    return 0;
}
