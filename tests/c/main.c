/*
 * keystrata C ABI test suite: every group of tests/c/test_<topic>.c.
 *
 *   ./test_keystrata tests/vectors
 *
 * One line per check group; the last line is exactly
 *   c-tests: N passed, M failed
 * where N and M count assertions. Exit status 0 only if M is 0.
 * KS_TEST_QUICK=1 (used under valgrind) shortens the threaded parts.
 */
#include "harness.h"

#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "tests/vectors";
    const char *q = getenv("KS_TEST_QUICK");
    g_quick = q && q[0] && strcmp(q, "0") != 0;
    snprintf(g_tmpdir, sizeof g_tmpdir, "%s/ks-c-test-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(g_tmpdir)) {
        perror("mkdtemp");
        return 2;
    }
    printf("keystrata %s C tests%s\n", ks_version(), g_quick ? " (quick)" : "");

    run_errors();
    run_vectors(dir);
    run_seal();
    run_envelope();
    run_derive();
    run_keychain();
    run_threads();
    run_portable(dir);
    run_gateway(dir);
    run_custom_root();
    run_sign();
    run_sign_more();
    run_stream(dir);
    run_rewrap();

    rm_tmpdir();
    int pass = atomic_load(&g_pass), fail = atomic_load(&g_fail);
    printf("c-tests: %d passed, %d failed\n", pass, fail);
    return fail == 0 ? 0 : 1;
}
