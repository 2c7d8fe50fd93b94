// BLAKE3 of file leaves on libuv's thread pool, so that hashing a file (or
// the leaves an add reads) costs the JavaScript thread nothing and needs no
// worker thread to start. Each leaf is read 64 KiB at a time with pread and
// every piece is hashed right after its read, while it is in this core's
// cache, as `b3sum --no-mmap` does. The BLAKE3 C sources are the ones the
// `@c4312/blake3-native` package ships (see binding.gyp).
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <node_api.h>
#include <uv.h>
#include "blake3.h"

#define PIECE (64 * 1024)
#define MAX_LEAF_SIZE (64 * 1024 * 1024)
#define MAX_LEAVES 4096

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  int fd;
  int64_t position;
  int64_t leaf_size;
  int32_t count;
  // leaves: digests (count * 32) and sizes; the list ends at a short leaf
  uint8_t *digests;
  double *sizes;
  int32_t done;
  // readHashed: the caller's buffer, held by a reference while the work runs
  napi_ref target_ref;
  uint8_t *target;
  int64_t read;
  int err;
} job_t;

// Reads up to `length` bytes at `position` into `dst` (or a scratch piece
// when dst is NULL) and hashes them as they arrive. Returns the bytes read
// (fewer at the end of the file), or -1 with errno set.
static int64_t read_hashed(int fd, int64_t position, int64_t length, uint8_t *dst, uint8_t *scratch, uint8_t out[BLAKE3_OUT_LEN]) {
  blake3_hasher hasher;
  blake3_hasher_init(&hasher);
  int64_t done = 0;
  while (done < length) {
    size_t want = (size_t)(length - done < PIECE ? length - done : PIECE);
    uint8_t *piece = dst != NULL ? dst + done : scratch;
    size_t got = 0;
    while (got < want) {
      ssize_t n = pread(fd, piece + got, want - got, (off_t)(position + done + (int64_t)got));
      if (n < 0) {
        if (errno == EINTR) continue;
        return -1;
      }
      if (n == 0) break;
      got += (size_t)n;
    }
    if (got > 0) blake3_hasher_update(&hasher, piece, got);
    done += (int64_t)got;
    if (got < want) break;
  }
  blake3_hasher_finalize(&hasher, out, BLAKE3_OUT_LEN);
  return done;
}

static void leaves_execute(napi_env env, void *data) {
  (void)env;
  job_t *job = data;
  uint8_t *scratch = malloc(PIECE);
  if (scratch == NULL) {
    job->err = ENOMEM;
    return;
  }
  for (int32_t i = 0; i < job->count; i++) {
    int64_t n = read_hashed(job->fd, job->position + (int64_t)i * job->leaf_size, job->leaf_size, NULL, scratch, job->digests + (size_t)i * BLAKE3_OUT_LEN);
    if (n < 0) {
      job->err = errno;
      break;
    }
    job->sizes[i] = (double)n;
    job->done = i + 1;
    if (n < job->leaf_size) break;
  }
  free(scratch);
}

static void read_execute(napi_env env, void *data) {
  (void)env;
  job_t *job = data;
  job->digests = malloc(BLAKE3_OUT_LEN);
  if (job->digests == NULL) {
    job->err = ENOMEM;
    return;
  }
  job->read = read_hashed(job->fd, job->position, job->leaf_size, job->target, NULL, job->digests);
  if (job->read < 0) job->err = errno;
}

static napi_value errno_error(napi_env env, int err) {
  napi_value code, message, error;
  napi_create_string_utf8(env, uv_err_name(uv_translate_sys_error(err)), NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, strerror(err), NAPI_AUTO_LENGTH, &message);
  napi_create_error(env, code, message, &error);
  napi_value errno_value;
  napi_create_int32(env, -err, &errno_value);
  napi_set_named_property(env, error, "errno", errno_value);
  return error;
}

// a copy of `len` bytes as a plain Uint8Array
static napi_value bytes_of(napi_env env, const uint8_t *src, size_t len) {
  void *data;
  napi_value buffer, array;
  napi_create_arraybuffer(env, len, &data, &buffer);
  if (len > 0) memcpy(data, src, len);
  napi_create_typedarray(env, napi_uint8_array, len, buffer, 0, &array);
  return array;
}

// frees a job at any stage: before its work was created, or after it completed
static void job_free(napi_env env, job_t *job) {
  if (job->target_ref != NULL) napi_delete_reference(env, job->target_ref);
  if (job->work != NULL) napi_delete_async_work(env, job->work);
  free(job->digests);
  free(job->sizes);
  free(job);
}

// rejects the job's promise when its work was cancelled or failed; 1 then
static int rejected(napi_env env, napi_status status, job_t *job) {
  if (status == napi_ok && job->err == 0) return 0;
  napi_reject_deferred(env, job->deferred, errno_error(env, status != napi_ok ? ECANCELED : job->err));
  return 1;
}

static void leaves_complete(napi_env env, napi_status status, void *data) {
  job_t *job = data;
  if (!rejected(env, status, job)) {
    napi_value result, sizes, size;
    napi_create_object(env, &result);
    napi_set_named_property(env, result, "digests", bytes_of(env, job->digests, (size_t)job->done * BLAKE3_OUT_LEN));
    napi_create_array_with_length(env, (size_t)job->done, &sizes);
    for (int32_t i = 0; i < job->done; i++) {
      napi_create_double(env, job->sizes[i], &size);
      napi_set_element(env, sizes, (uint32_t)i, size);
    }
    napi_set_named_property(env, result, "sizes", sizes);
    napi_resolve_deferred(env, job->deferred, result);
  }
  job_free(env, job);
}

static void read_complete(napi_env env, napi_status status, void *data) {
  job_t *job = data;
  if (!rejected(env, status, job)) {
    napi_value result, bytes_read;
    napi_create_object(env, &result);
    napi_create_double(env, (double)job->read, &bytes_read);
    napi_set_named_property(env, result, "bytesRead", bytes_read);
    napi_set_named_property(env, result, "digest", bytes_of(env, job->digests, BLAKE3_OUT_LEN));
    napi_resolve_deferred(env, job->deferred, result);
  }
  job_free(env, job);
}

static napi_value queue(napi_env env, job_t *job, const char *name, napi_async_execute_callback execute, napi_async_complete_callback complete) {
  napi_value promise, resource_name;
  napi_create_promise(env, &job->deferred, &promise);
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &resource_name);
  if (napi_create_async_work(env, NULL, resource_name, execute, complete, job, &job->work) != napi_ok ||
      napi_queue_async_work(env, job->work) != napi_ok) {
    napi_reject_deferred(env, job->deferred, errno_error(env, EAGAIN));
    job_free(env, job);
  }
  return promise;
}

static int int_arg(napi_env env, napi_value v, int64_t min, int64_t max, int64_t *out) {
  napi_valuetype type;
  double d;
  if (napi_typeof(env, v, &type) != napi_ok || type != napi_number || napi_get_value_double(env, v, &d) != napi_ok) return 0;
  if (d != d || d < (double)min || d > (double)max || d != (double)(int64_t)d) return 0;
  *out = (int64_t)d;
  return 1;
}

// a Uint8Array argument: its bytes and length
static int bytes_arg(napi_env env, napi_value v, void **data, size_t *length) {
  bool is_typed = false;
  napi_typedarray_type type;
  size_t offset;
  napi_value arraybuffer;
  return napi_is_typedarray(env, v, &is_typed) == napi_ok && is_typed &&
         napi_get_typedarray_info(env, v, &type, length, data, &arraybuffer, &offset) == napi_ok && type == napi_uint8_array;
}

#define MAX_POSITION 9007199254740991LL

// hashLeaves(fd, position, leafSize, count) -> Promise<{ digests, sizes }>
static napi_value hash_leaves(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  int64_t fd, position, leaf_size, count;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4 ||
      !int_arg(env, argv[0], 0, INT32_MAX, &fd) || !int_arg(env, argv[1], 0, MAX_POSITION, &position) ||
      !int_arg(env, argv[2], 1, MAX_LEAF_SIZE, &leaf_size) || !int_arg(env, argv[3], 1, MAX_LEAVES, &count)) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "hashLeaves(fd, position, leafSize, count) takes a descriptor, a position, a leaf size of 1 byte to 64 MiB and 1 to 4096 leaves");
    return NULL;
  }
  job_t *job = calloc(1, sizeof(job_t));
  if (job != NULL) {
    job->digests = malloc((size_t)count * BLAKE3_OUT_LEN);
    job->sizes = malloc((size_t)count * sizeof(double));
  }
  if (job == NULL || job->digests == NULL || job->sizes == NULL) {
    if (job != NULL) job_free(env, job);
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  job->fd = (int)fd;
  job->position = position;
  job->leaf_size = leaf_size;
  job->count = (int32_t)count;
  return queue(env, job, "hearth.hashLeaves", leaves_execute, leaves_complete);
}

// readHashed(fd, target, position) -> Promise<{ bytesRead, digest }>
static napi_value read_hashed_js(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int64_t fd, position;
  size_t length = 0;
  void *data = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3 ||
      !int_arg(env, argv[0], 0, INT32_MAX, &fd) || !bytes_arg(env, argv[1], &data, &length) || length > MAX_LEAF_SIZE || !int_arg(env, argv[2], 0, MAX_POSITION, &position)) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "readHashed(fd, target, position) takes a descriptor, a Uint8Array of at most 64 MiB and a position");
    return NULL;
  }
  job_t *job = calloc(1, sizeof(job_t));
  if (job == NULL) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  job->fd = (int)fd;
  job->position = position;
  job->leaf_size = (int64_t)length;
  job->target = data;
  // the array's memory must outlive the read: hold the array until it completes
  napi_create_reference(env, argv[1], 1, &job->target_ref);
  return queue(env, job, "hearth.readHashed", read_execute, read_complete);
}

// hashBytes(bytes) -> Uint8Array: BLAKE3 of bytes on this thread (for the tests, and a check that this addon's hash is the package's)
static napi_value hash_bytes(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  size_t length = 0;
  void *data = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 || !bytes_arg(env, argv[0], &data, &length)) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "hashBytes(bytes) takes a Uint8Array");
    return NULL;
  }
  blake3_hasher hasher;
  uint8_t out[BLAKE3_OUT_LEN];
  blake3_hasher_init(&hasher);
  blake3_hasher_update(&hasher, data, length);
  blake3_hasher_finalize(&hasher, out, BLAKE3_OUT_LEN);
  return bytes_of(env, out, BLAKE3_OUT_LEN);
}

static int export_fn(napi_env env, napi_value exports, const char *name, napi_callback cb) {
  napi_value fn;
  return napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, NULL, &fn) == napi_ok &&
         napi_set_named_property(env, exports, name, fn) == napi_ok;
}

NAPI_MODULE_INIT() {
  if (!export_fn(env, exports, "hashLeaves", hash_leaves) || !export_fn(env, exports, "readHashed", read_hashed_js) ||
      !export_fn(env, exports, "hashBytes", hash_bytes)) return NULL;
  return exports;
}
