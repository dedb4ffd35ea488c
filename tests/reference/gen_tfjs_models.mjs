// gen_tfjs_models.mjs - the built-in models resnet20 and minivggnet built in
// Keras' JavaScript port, TensorFlow.js's layers API, with Keras' default
// arguments, on 32x32x3 (CIFAR-10) and 28x28x1 (Fashion-MNIST) inputs, 10
// classes.  For each model it writes into tests/fixtures/models/:
//
//   tfjs_<model>_<H>x<W>x<C>.json          model.toJSON(): the tf.keras 2
//                                           topology ("Model" / "Sequential")
//   tfjs_<model>_<H>x<W>x<C>.summary.json  model.summary() as data: per layer
//                                           name, class_name, output_shape
//                                           ([null, ...]), params,
//                                           trainable_params, inbound
//                                           (functional); the totals; and the
//                                           printed summary lines
//
// tests/integration/test_api_models_tfjs.py posts the configs to
// /v1/models/validate and compares traind's answer, and its built-ins, with
// these summaries; the suite reads the committed files and needs no node.
//
// Layer names: tfjs's own auto-names are "<snake_case>_<ClassName><n>"
// (conv2d_Conv2D1), not Keras'.  Every layer is given the name Keras'
// auto-naming gives it (backend.unique_object_name: the class name in snake
// case, then _1, _2, ... for the second and later layers of a class, in the
// order the layers are created; the input layer input_1), so the files read
// as a tf.keras 2 model.to_json().  The order of model.layers is tfjs's own
// (a port of Keras' Network: by depth from the output, ties in traversal
// order).
//
// Run (developers only; node 20, npm):
//   cd tests/reference && npm install --no-package-lock && node gen_tfjs_models.mjs [outdir]
// package.json pins the exact @tensorflow/tfjs version; node_modules is not
// committed.
import * as tf from '@tensorflow/tfjs';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const outdir = resolve(process.argv[2] ?? join(here, '..', 'fixtures', 'models'));
const CLASSES = 10;
// Keras' default kernel initializer; tfjs's own default for Conv2D and Dense
// is glorotNormal.  tfjs writes it as VarianceScaling(1, fan_avg, uniform), as
// Keras 2.0 did.
const KERNEL_INIT = 'glorotUniform';

// Keras' generic_utils.to_snake_case.
function snakeCase(className) {
  const s = className.replace(/(.)([A-Z][a-z0-9]+)/g, '$1_$2');
  return s.replace(/([a-z])([A-Z])/g, '$1_$2').toLowerCase();
}

// Keras' auto-names for one model: conv2d, conv2d_1, ...; input_1.
function namer() {
  const seen = new Map();
  return (className) => {
    const base = className === 'InputLayer' ? 'input' : snakeCase(className);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    if (className === 'InputLayer')
      return `${base}_${n + 1}`;
    return n === 0 ? base : `${base}_${n}`;
  };
}

// He et al. 2016's CIFAR ResNet-20 as keras' cifar10_resnet example's
// resnet_v1 (depth 20) builds it and core/model_builtin.c's build_resnet20
// describes it: Conv2D(16, 3x3) -> BN -> ReLU; three stages of three basic
// blocks of 16, 32, 64 filters,
//     y = Conv2D(3x3, stride s) -> BN -> ReLU -> Conv2D(3x3) -> BN
//     x = Activation(relu)(Add([x', y])), x' = x, or Conv2D(1x1, stride 2)(x)
//         (no BN) in the first block of stages 2 and 3, created after y;
// GlobalAveragePooling2D, Dense(classes, softmax).  Everything else Keras'
// defaults ('same' padding as the example).
function resnet20(shape) {
  const name = namer();
  const conv = (x, filters, k, strides) => tf.layers.conv2d({
    filters, kernelSize: k, strides, padding: 'same', kernelInitializer: KERNEL_INIT,
    name: name('Conv2D'),
  }).apply(x);
  const bn = (x) => tf.layers.batchNormalization({ name: name('BatchNormalization') }).apply(x);
  const relu = (x) => tf.layers.activation({ activation: 'relu', name: name('Activation') }).apply(x);

  const input = tf.input({ shape, name: name('InputLayer') });
  let x = relu(bn(conv(input, 16, 3, 1)));
  for (let stage = 0; stage < 3; stage++) {
    const filters = 16 << stage;
    for (let block = 0; block < 3; block++) {
      const project = stage > 0 && block === 0;
      let y = relu(bn(conv(x, filters, 3, project ? 2 : 1)));
      y = bn(conv(y, filters, 3, 1));
      const shortcut = project ? conv(x, filters, 1, 2) : x;
      x = relu(tf.layers.add({ name: name('Add') }).apply([shortcut, y]));
    }
  }
  x = tf.layers.globalAveragePooling2d({ name: name('GlobalAveragePooling2D') }).apply(x);
  const output = tf.layers.dense({
    units: CLASSES, activation: 'softmax', kernelInitializer: KERNEL_INIT, name: name('Dense'),
  }).apply(x);
  return tf.model({ inputs: input, outputs: output, name: 'model' });
}

// PyImageSearch MiniVGGNet (core/model_builtin.c's build_minivggnet):
// (Conv2D(3x3, same) -> Activation(relu) -> BN) * 2 -> MaxPooling2D(2)
// -> Dropout(0.25), with 32 then 64 filters; Flatten -> Dense(512)
// -> Activation(relu) -> BN -> Dropout(0.5) -> Dense(classes)
// -> Activation(softmax).  A Sequential model, as the built-in.
function minivggnet(shape) {
  const name = namer();
  const model = tf.sequential({ name: 'sequential' });
  let first = true;
  const add = (layer, args) => {
    const a = { ...args, name: name(layer.className) };
    if (first)
      a.inputShape = shape;
    first = false;
    model.add(layer.make(a));
  };
  const L = (className, make) => ({ className, make });
  const Conv2D = L('Conv2D', tf.layers.conv2d);
  const Activation = L('Activation', tf.layers.activation);
  const BN = L('BatchNormalization', tf.layers.batchNormalization);
  const MaxPool = L('MaxPooling2D', tf.layers.maxPooling2d);
  const Dropout = L('Dropout', tf.layers.dropout);
  const Flatten = L('Flatten', tf.layers.flatten);
  const Dense = L('Dense', tf.layers.dense);
  for (const filters of [32, 64]) {
    for (let j = 0; j < 2; j++) {
      add(Conv2D, { filters, kernelSize: 3, padding: 'same', kernelInitializer: KERNEL_INIT });
      add(Activation, { activation: 'relu' });
      add(BN, {});
    }
    add(MaxPool, { poolSize: 2 });
    add(Dropout, { rate: 0.25 });
  }
  add(Flatten, {});
  add(Dense, { units: 512, kernelInitializer: KERNEL_INIT });
  add(Activation, { activation: 'relu' });
  add(BN, {});
  add(Dropout, { rate: 0.5 });
  add(Dense, { units: CLASSES, kernelInitializer: KERNEL_INIT });
  add(Activation, { activation: 'softmax' });
  return model;
}

const size = (weights) => weights.reduce((n, w) => n + w.shape.reduce((a, b) => a * b, 1), 0);

// model.summary() as data, and as tfjs prints it.
function summaryOf(model, functional) {
  const layers = model.layers.map((l) => {
    const row = {
      name: l.name,
      class_name: l.getClassName(),
      output_shape: l.outputShape,
      params: l.countParams(),
      trainable_params: size(l.trainableWeights),
    };
    if (functional)
      row.inbound = l.inboundNodes.flatMap((node) => node.inboundLayers.map((p) => p.name));
    return row;
  });
  const lines = [];
  model.summary(undefined, undefined, (line) => lines.push(line));
  const total = model.countParams();
  const trainable = size(model.trainableWeights);
  return {
    generator: 'tests/reference/gen_tfjs_models.mjs',
    tfjs_version: tf.version.tfjs,
    name: model.name,
    class_name: model.getClassName(),
    input_shape: model.inputs[0].shape,
    layers,
    total_params: total,
    trainable_params: trainable,
    non_trainable_params: total - trainable,
    summary_text: lines,
  };
}

// JSON with a line per layer and per printed line.
function formatSummary(summary) {
  const item = ([key, value]) => key === 'layers' || key === 'summary_text'
    ? ` "${key}": [\n${value.map((v) => `  ${JSON.stringify(v)}`).join(',\n')}\n ]`
    : ` "${key}": ${JSON.stringify(value)}`;
  return `{\n${Object.entries(summary).map(item).join(',\n')}\n}\n`;
}

async function main() {
  await tf.setBackend('cpu');
  mkdirSync(outdir, { recursive: true });
  const builds = { resnet20: [resnet20, true], minivggnet: [minivggnet, false] };
  for (const [model, [build, functional]] of Object.entries(builds)) {
    for (const shape of [[32, 32, 3], [28, 28, 1]]) {
      const m = build(shape);
      const base = join(outdir, `tfjs_${model}_${shape.join('x')}`);
      writeFileSync(`${base}.json`, m.toJSON() + '\n');
      writeFileSync(`${base}.summary.json`, formatSummary(summaryOf(m, functional)));
      console.log(`${base}: ${m.countParams()} params`);
      m.dispose();
    }
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
