{
  "targets": [
    {
      "target_name": "flock",
      "sources": ["src/flock.c"]
    }
  ]
}
