{
  # Built by scripts/build-native.mjs (node-gyp rebuild --directory native).
  # `lumen_isa` is chosen by that script from the host CPU: "avx2" adds -mavx2 -mfma;
  # AVX-512 GEMM microkernels are compiled with function target attributes and picked at run time.
  "variables": { "lumen_isa%": "generic" },
  "targets": [
    {
      "target_name": "lumen_native",
      "sources": [
        "src/addon.c", "src/threadpool.c", "src/gemm.c", "src/elementwise.c", "src/reduce.c",
        "src/copy.c", "src/norms.c", "src/softmax_xent.c", "src/attention.c", "src/adamw.c",
        "src/lookup.c"
      ],
      "cflags!": ["-O2", "-O0", "-fno-exceptions"],
      "cflags": ["-std=gnu11", "-O3", "-fno-math-errno", "-fno-trapping-math", "-Wall", "-Wextra",
                 "-Wno-unused-parameter", "-pthread", "-fvisibility=hidden"],
      "ldflags": ["-pthread"],
      "libraries": ["-lm"],
      "conditions": [
        ["lumen_isa=='avx2'", { "cflags": ["-mavx2", "-mfma", "-mf16c"] }],
        ["OS=='mac'", { "xcode_settings": { "OTHER_CFLAGS": ["-std=gnu11", "-O3"] } }]
      ]
    }
  ]
}
