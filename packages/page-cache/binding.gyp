{
  "targets": [
    {
      "target_name": "page_cache",
      "sources": ["src/page_cache.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    }
  ]
}
