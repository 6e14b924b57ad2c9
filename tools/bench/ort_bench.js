// ONNX Runtime (npm onnxruntime-node) inference baseline of bertfit's engine benchmark.
//   node tools/bench/ort_bench.js --onnx model.onnx --model base --batch 8 --seq 128 --threads 2 \
//        --warmup 1 --repeats 3 --gflop G [--setting LABEL]
// Prints one "RESULT {...}" JSON line like bertfit_engine_bench. The model is the PyTorch baseline exported by
// tools/bench/torch_bench.py --export-onnx (same architecture and shapes); graph optimisations at "all".
// NODE_PATH must point at a node_modules holding onnxruntime-node (bench/engine/run.sh installs it in the
// build directory).
const ort = require('onnxruntime-node');

function arg(name, def) {
  const i = process.argv.indexOf('--' + name);
  return i >= 0 ? process.argv[i + 1] : def;
}

async function main() {
  const B = parseInt(arg('batch', '8')), T = parseInt(arg('seq', '128'));
  const threads = parseInt(arg('threads', '2')), warmup = parseInt(arg('warmup', '1'));
  const repeats = parseInt(arg('repeats', '3'));
  const session = await ort.InferenceSession.create(arg('onnx'), {
    intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all', executionMode: 'sequential',
  });
  const ids = new BigInt64Array(B * T), mask = new BigInt64Array(B * T), types = new BigInt64Array(B * T);
  let s = 11n;
  for (let i = 0; i < B * T; ++i) {  // a fixed LCG: random-looking ids in [1, 30522)
    s = (s * 6364136223846793005n + 1442695040888963407n) & ((1n << 64n) - 1n);
    ids[i] = 1n + (s >> 33n) % 30521n;
    mask[i] = 1n;
  }
  const feeds = {
    input_ids: new ort.Tensor('int64', ids, [B, T]),
    attention_mask: new ort.Tensor('int64', mask, [B, T]),
    token_type_ids: new ort.Tensor('int64', types, [B, T]),
  };
  const samples = [];
  for (let r = 0; r < warmup + repeats; ++r) {
    const t0 = process.hrtime.bigint();
    await session.run(feeds);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (r >= warmup) samples.push(ms);
  }
  const srt = [...samples].sort((a, b) => a - b), n = srt.length;
  const median = n % 2 ? srt[(n - 1) / 2] : 0.5 * (srt[n / 2 - 1] + srt[n / 2]);
  console.log('RESULT ' + JSON.stringify({
    engine: 'onnxruntime', case: 'infer', model: arg('model', 'base'), batch: B, seq: T, threads,
    setting: arg('setting', 't' + threads), median_ms: median, min_ms: srt[0], max_ms: srt[n - 1],
    gflop: parseFloat(arg('gflop', '0')), peak_rss_mb: process.resourceUsage().maxRSS / 1024,
    samples_ms: samples.map((x) => Math.round(x * 1000) / 1000), ort: require('onnxruntime-node/package.json').version,
  }));
}

main().catch((e) => { console.error('ort_bench: ' + e.message); process.exit(1); });
