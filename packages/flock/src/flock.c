/*
 * flock(2) for Node: the one system call the disk image tools need that Node does not offer. BSD-2-Clause.
 * flock(fd, mode) with mode 0 = unlock, 1 = shared, 2 = exclusive, never blocking; returns 0 or the errno
 * (EWOULDBLOCK when another open file description holds a conflicting lock).
 */
#include <errno.h>
#include <node_api.h>
#include <sys/file.h>

static napi_value flock_call(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t fd = -1;
  int32_t mode = 0;
  napi_value result;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_int32(env, argv[1], &mode) != napi_ok) {
    napi_throw_type_error(env, NULL, "flock(fd, mode): two integers expected");
    return NULL;
  }
  int operation = mode == 2 ? LOCK_EX : mode == 1 ? LOCK_SH : LOCK_UN;
  int rc;
  do {
    rc = flock(fd, operation | LOCK_NB);
  } while (rc != 0 && errno == EINTR);
  napi_create_int32(env, rc == 0 ? 0 : errno, &result);
  return result;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "flock", NAPI_AUTO_LENGTH, flock_call, NULL, &fn);
  napi_set_named_property(env, exports, "flock", fn);
  return exports;
}
