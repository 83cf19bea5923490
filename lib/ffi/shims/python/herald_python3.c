/*
 * nest-herald/ffi: the Python shim, a runtime library that embeds CPython
 * (3.10+) and forwards requests to Python code, as the original's
 * lib_nonblocking_ffi_python3.so. Load it with `global: true` (Python's own
 * extension modules, e.g. _hashlib, need libpython's symbols in the global
 * scope).
 *
 * cfg: "module,func[,arg]". init imports `module` (found on sys.path, e.g.
 * PYTHONPATH; or a path to a .py file, whose folder is put first on
 * sys.path and which is imported by its name) and calls `module.func(arg)` once (arg is the rest of cfg after
 * the second comma, commas included, or None); it returns the handler, a
 * callable that gets each request as bytes and returns bytes, str (sent as
 * UTF-8) or None (an empty answer). An exception answers "ExceptionType:
 * message" with rc 1, or with the exception's own `rc` attribute when it is
 * a non-zero int. Each runtime (one per cfg) has one poll thread;
 * handlers run with the GIL, so load several cfgs, or release the GIL in the
 * handler (hashlib does for large inputs), for parallelism.
 *
 * init returns 22 for a malformed cfg, 2 when the import or the factory
 * fails (the traceback goes to stderr), 11 when no thread can start.
 *
 * Build: node scripts/build-ffi-runtimes.mjs python (uses python3-config).
 */
#define _GNU_SOURCE /* memrchr */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../../native/herald_ffi.h"

struct runtime {
  void *tq;
  PyObject *handler;
};

static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;

/* Starts the interpreter once per process, leaving Node's signals alone, and
 * releases the GIL: from then on every thread takes it with PyGILState. */
static int ensure_python(void) {
  int rc = 0;
  pthread_mutex_lock(&init_lock);
  if (!Py_IsInitialized()) {
    PyConfig config;
    PyConfig_InitPythonConfig(&config);
    config.install_signal_handlers = 0;
    config.parse_argv = 0;
    PyStatus status = Py_InitializeFromConfig(&config);
    PyConfig_Clear(&config);
    if (PyStatus_Exception(status)) {
      fprintf(stderr, "nest-herald/ffi python shim: cannot start Python: %s\n",
              status.err_msg ? status.err_msg : "unknown error");
      rc = 2;
    } else {
      PyEval_SaveThread();
    }
  }
  pthread_mutex_unlock(&init_lock);
  return rc;
}

/* A malloc'ed copy of the answer; NULL for an empty one. */
static char *copy_answer(const char *data, Py_ssize_t len) {
  if (len <= 0) return NULL;
  char *out = malloc((size_t)len);
  if (out) memcpy(out, data, (size_t)len);
  return out;
}

/* "Type: message" of the pending exception, malloc'ed; clears it. Its `rc`
 * attribute, a non-zero int, replaces *rc. */
static char *describe_error(int *len, int *rc) {
  PyObject *type, *value, *trace;
  PyErr_Fetch(&type, &value, &trace);
  PyErr_NormalizeException(&type, &value, &trace);
  if (value && PyObject_HasAttrString(value, "rc")) {
    PyObject *code = PyObject_GetAttrString(value, "rc");
    long wanted = code && PyLong_Check(code) ? PyLong_AsLong(code) : 0;
    if (wanted != 0 && wanted >= INT_MIN && wanted <= INT_MAX) *rc = (int)wanted;
    Py_XDECREF(code);
    PyErr_Clear();
  }
  PyObject *text = value ? PyObject_Str(value) : NULL;
  const char *name = type ? ((PyTypeObject *)type)->tp_name : "Exception";
  const char *message = text ? PyUnicode_AsUTF8(text) : NULL;
  if (!message) {
    PyErr_Clear();
    message = "";
  }
  size_t size = strlen(name) + strlen(message) + 3;
  char *out = malloc(size);
  if (out) *len = snprintf(out, size, "%s: %s", name, message);
  Py_XDECREF(text);
  Py_XDECREF(type);
  Py_XDECREF(value);
  Py_XDECREF(trace);
  return out;
}

static void handle(struct runtime *rt, void *task) {
  int len = 0;
  char *req = ngx_http_lua_ffi_get_req(task, &len);
  PyGILState_STATE gil = PyGILState_Ensure();
  int rc = 0;
  char *rsp = NULL;
  int rsp_len = 0;
  PyObject *arg = PyBytes_FromStringAndSize(req, len);
  PyObject *result = arg ? PyObject_CallOneArg(rt->handler, arg) : NULL;
  Py_XDECREF(arg);
  if (result == NULL) {
    rc = 1;
    rsp = describe_error(&rsp_len, &rc);
  } else if (result == Py_None) {
    /* empty answer */
  } else if (PyBytes_Check(result)) {
    rsp_len = (int)PyBytes_GET_SIZE(result);
    rsp = copy_answer(PyBytes_AS_STRING(result), rsp_len);
  } else if (PyByteArray_Check(result)) {
    rsp_len = (int)PyByteArray_GET_SIZE(result);
    rsp = copy_answer(PyByteArray_AS_STRING(result), rsp_len);
  } else if (PyUnicode_Check(result)) {
    Py_ssize_t size = 0;
    const char *utf8 = PyUnicode_AsUTF8AndSize(result, &size);
    if (utf8) {
      rsp_len = (int)size;
      rsp = copy_answer(utf8, size);
    } else {
      rc = 1;
      rsp = describe_error(&rsp_len, &rc);
    }
  } else {
    rc = 1;
    PyErr_Format(PyExc_TypeError, "the handler returned %s, expected bytes, str or None",
                 Py_TYPE(result)->tp_name);
    rsp = describe_error(&rsp_len, &rc);
  }
  Py_XDECREF(result);
  PyGILState_Release(gil);
  if (rsp == NULL) rsp_len = 0;
  ngx_http_lua_ffi_respond(task, rc, rsp, rsp_len);
}

static void *poller(void *arg) {
  struct runtime *rt = arg;
  void *task;
  while ((task = ngx_http_lua_ffi_task_poll(rt->tq)) != NULL) handle(rt, task);
  /* Unloaded: never touch tq again; drop the handler. */
  PyGILState_STATE gil = PyGILState_Ensure();
  Py_DECREF(rt->handler);
  PyGILState_Release(gil);
  free(rt);
  return NULL;
}

int libffi_init(char *cfg, void *tq) {
  if (cfg == NULL) return 22;
  const char *comma = strchr(cfg, ',');
  if (comma == NULL || comma == cfg) return 22;
  const char *func_start = comma + 1;
  const char *second = strchr(func_start, ',');
  size_t func_len = second ? (size_t)(second - func_start) : strlen(func_start);
  if (func_len == 0) return 22;
  int rc = ensure_python();
  if (rc != 0) return rc;

  PyGILState_STATE gil = PyGILState_Ensure();
  PyObject *module = NULL, *factory = NULL, *handler = NULL;
  const char *module_start = cfg;
  Py_ssize_t module_len = comma - cfg;
  const char *slash = memrchr(cfg, '/', (size_t)module_len);
  if (slash) {
    /* A file: its folder goes first on sys.path (once), its name is the module. */
    PyObject *dir = PyUnicode_FromStringAndSize(cfg, slash == cfg ? 1 : slash - cfg);
    PyObject *path = PySys_GetObject("path"); /* borrowed */
    if (dir && path && PyList_Check(path) && PySequence_Contains(path, dir) == 0)
      PyList_Insert(path, 0, dir);
    Py_XDECREF(dir);
    module_start = slash + 1;
    module_len = comma - module_start;
    if (module_len > 3 && memcmp(comma - 3, ".py", 3) == 0) module_len -= 3;
  }
  PyObject *name = PyUnicode_FromStringAndSize(module_start, module_len);
  PyObject *func = PyUnicode_FromStringAndSize(func_start, (Py_ssize_t)func_len);
  if (name && func) module = PyImport_Import(name);
  if (module) factory = PyObject_GetAttr(module, func);
  if (factory) {
    PyObject *arg = second ? PyUnicode_FromString(second + 1) : Py_NewRef(Py_None);
    if (arg) handler = PyObject_CallOneArg(factory, arg);
    Py_XDECREF(arg);
  }
  if (handler && !PyCallable_Check(handler)) {
    PyErr_Format(PyExc_TypeError, "%U.%U(cfg) returned %s, expected a callable handler", name,
                 func, Py_TYPE(handler)->tp_name);
    Py_CLEAR(handler);
  }
  if (handler == NULL) {
    fprintf(stderr, "nest-herald/ffi python shim: init \"%s\" failed:\n", cfg);
    PyErr_Print();
    rc = 2;
  }
  Py_XDECREF(factory);
  Py_XDECREF(module);
  Py_XDECREF(func);
  Py_XDECREF(name);
  PyGILState_Release(gil);
  if (rc != 0) return rc;

  struct runtime *rt = malloc(sizeof *rt);
  rt->tq = tq;
  rt->handler = handler;
  pthread_t thread;
  if (pthread_create(&thread, NULL, poller, rt) != 0) {
    gil = PyGILState_Ensure();
    Py_DECREF(handler);
    PyGILState_Release(gil);
    free(rt);
    return 11;
  }
  pthread_detach(thread);
  return 0;
}
