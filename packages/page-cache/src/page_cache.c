// Drops clean pages of a file range from the kernel's page cache
// (posix_fadvise POSIX_FADV_DONTNEED). Node has no binding for it; the blob
// store uses it so that what a download writes does not stay in memory.
// Also sets glibc malloc's mmap and trim thresholds (mallopt), which Node
// cannot reach either.
#include <errno.h>
#include <fcntl.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>
#include <node_api.h>

static int range_args(napi_env env, napi_callback_info info, int32_t *fd, int64_t *offset, int64_t *length, const char *usage) {
  size_t argc = 3;
  napi_value argv[3];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3 ||
      napi_get_value_int32(env, argv[0], fd) != napi_ok ||
      napi_get_value_int64(env, argv[1], offset) != napi_ok ||
      napi_get_value_int64(env, argv[2], length) != napi_ok ||
      *fd < 0 || *offset < 0 || *length < 0) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", usage);
    return 0;
  }
  return 1;
}

static napi_value drop_pages(napi_env env, napi_callback_info info) {
  int32_t fd;
  int64_t offset, length;
  if (!range_args(env, info, &fd, &offset, &length, "dropPages(fd, offset, length) takes three non-negative integers")) return NULL;
#ifdef POSIX_FADV_DONTNEED
  int rc = posix_fadvise(fd, (off_t)offset, (off_t)length, POSIX_FADV_DONTNEED);
#else
  int rc = ENOSYS;
#endif
  napi_value out;
  napi_get_boolean(env, rc == 0, &out);
  return out;
}

// How many bytes of [offset, offset + length) are in the page cache (mincore
// of a read-only mapping, which reads nothing); -1 where that cannot be told.
static napi_value cached_bytes(napi_env env, napi_callback_info info) {
  int32_t fd;
  int64_t offset, length;
  if (!range_args(env, info, &fd, &offset, &length, "cachedBytes(fd, offset, length) takes three non-negative integers")) return NULL;
  double total = -1;
  long page = sysconf(_SC_PAGESIZE);
  if (page > 0 && offset % page == 0) {
    total = 0;
    if (length > 0) {
      void *map = mmap(NULL, (size_t)length, PROT_READ, MAP_SHARED, fd, (off_t)offset);
      size_t pages = ((size_t)length + (size_t)page - 1) / (size_t)page;
      unsigned char *vec = map == MAP_FAILED ? NULL : malloc(pages);
      if (vec != NULL && mincore(map, (size_t)length, (void *)vec) == 0) {
        for (size_t i = 0; i < pages; i++) if (vec[i] & 1) total += (double)page;
      } else {
        total = -1;
      }
      free(vec);
      if (map != MAP_FAILED) munmap(map, (size_t)length);
    }
  }
  napi_value out;
  napi_create_double(env, total, &out);
  return out;
}

// mallopt(M_MMAP_THRESHOLD) and mallopt(M_TRIM_THRESHOLD); false where the
// C library is not glibc or refused a value. Setting them stops glibc from
// adjusting them by itself.
static napi_value set_malloc_thresholds(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int64_t mmap_bytes, trim_bytes;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      napi_get_value_int64(env, argv[0], &mmap_bytes) != napi_ok ||
      napi_get_value_int64(env, argv[1], &trim_bytes) != napi_ok ||
      mmap_bytes <= 0 || trim_bytes <= 0 || mmap_bytes > INT32_MAX || trim_bytes > INT32_MAX) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "setMallocThresholds(mmapBytes, trimBytes) takes two positive integers below 2 GiB");
    return NULL;
  }
#ifdef __GLIBC__
  int ok = mallopt(M_MMAP_THRESHOLD, (int)mmap_bytes) == 1 && mallopt(M_TRIM_THRESHOLD, (int)trim_bytes) == 1;
#else
  int ok = 0;
#endif
  napi_value out;
  napi_get_boolean(env, ok, &out);
  return out;
}

static int export_fn(napi_env env, napi_value exports, const char *name, napi_callback cb) {
  napi_value fn;
  return napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, NULL, &fn) == napi_ok &&
         napi_set_named_property(env, exports, name, fn) == napi_ok;
}

NAPI_MODULE_INIT() {
  if (!export_fn(env, exports, "dropPages", drop_pages) || !export_fn(env, exports, "cachedBytes", cached_bytes) ||
      !export_fn(env, exports, "setMallocThresholds", set_malloc_thresholds)) return NULL;
  return exports;
}
