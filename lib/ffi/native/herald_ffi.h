/*
 * nest-herald/ffi: the C ABI between the Node host and a runtime library.
 *
 * It is the ABI of lua-resty-ffi (formerly lua-resty-nonblocking-ffi), under
 * both of its name generations, so a runtime written for the original loads
 * here unchanged. A runtime:
 *
 *   1. exports   int libffi_init(char *cfg, void *tq);
 *      (or the older name  int lib_nonblocking_ffi_init(char *cfg, void *tq);)
 *      `cfg` is a NUL-terminated copy, or NULL, that the host frees as soon as
 *      init returns: copy what you keep. Start your own poll thread(s) and
 *      return 0; any other value is reported to JS as an init failure.
 *   2. on its own threads, loops on  task = ..._task_poll(tq)  until it
 *      returns NULL (the runtime was unloaded: stop polling, never touch tq
 *      again; every poll thread gets NULL, for ever);
 *   3. reads the request with  ..._get_req(task, &len)  (the host owns it; it
 *      is NUL-terminated, `len` excludes the NUL; valid until respond);
 *   4. answers exactly once, from any thread, with
 *      ..._respond(task, rc, rsp, rsp_len):
 *        rc == 0 resolves the JS call, any other rc rejects it;
 *        rsp must come from malloc (the host frees it with free), or be NULL
 *        for an empty answer; rsp_len == 0 with a non-NULL rsp means a
 *        NUL-terminated string, otherwise exactly rsp_len bytes.
 *
 * The host symbols are resolved from the global scope: leave them undefined
 * in your library (link with -shared and without -Wl,--no-undefined).
 */
#ifndef HERALD_FFI_H
#define HERALD_FFI_H

#ifdef __cplusplus
extern "C" {
#endif

/* The runtime's entry point: one of the two names. */
typedef int (*herald_ffi_init_fn)(char *cfg, void *tq);

/* Current generation (lua-resty-ffi). */
void *ngx_http_lua_ffi_task_poll(void *tq);
char *ngx_http_lua_ffi_get_req(void *task, int *len);
void ngx_http_lua_ffi_respond(void *task, int rc, char *rsp, int rsp_len);

/* First generation (lua-resty-nonblocking-ffi, up to 2022-11). */
void *ngx_http_lua_nonblocking_ffi_task_poll(void *tq);
char *ngx_http_lua_nonblocking_ffi_get_req(void *task, int *len);
void ngx_http_lua_nonblocking_ffi_respond(void *task, int rc, char *rsp, int rsp_len);

#ifdef __cplusplus
}
#endif

#endif /* HERALD_FFI_H */
