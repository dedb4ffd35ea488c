/* model_spec.h - a Keras Sequential model's description (spec), without
 * weights or runtime: layer configs, shapes and parameter counts, the Keras
 * JSON that describes them, and the built-in models.
 *
 *   model_spec.c        defaults, names, copy and free
 *   model_shape.c       shape inference, parameter counts, the softmax output
 *                       check: the one validator (model_create() uses it)
 *   model_json_read.c   model_spec_parse_json
 *   model_json_write.c  model_spec_to_json
 *   model_builtin.c     minivggnet, shallownet, lenet, mlp
 *
 * Ownership: model_spec_* functions own spec->layers (freed by
 * model_spec_free). */
#ifndef TRAIND_MODEL_SPEC_H
#define TRAIND_MODEL_SPEC_H

#include <stdbool.h>
#include <stddef.h>

#include "diag.h"
#include "initializers.h"

/* Limits of a spec, checked by model_spec_infer_shapes(). */
#define MODEL_SPEC_DIM_MAX 65536          /* input H, W, C; kernel, pool and stride sizes */
#define MODEL_SPEC_WIDTH_MAX (1 << 20)    /* Conv2D filters, Dense units */
#define MODEL_SPEC_FEATURES_MAX (1 << 28) /* elements of one example after any layer */
#define MODEL_SPEC_LAYERS_MAX 1024

enum layer_kind {
    LAYER_KIND_CONV2D,
    LAYER_KIND_DENSE,
    LAYER_KIND_BATCH_NORMALIZATION,
    LAYER_KIND_ACTIVATION,
    LAYER_KIND_MAX_POOLING2D,
    LAYER_KIND_AVERAGE_POOLING2D,
    LAYER_KIND_DROPOUT,
    LAYER_KIND_FLATTEN,
    LAYER_KIND_GLOBAL_AVERAGE_POOLING2D,
    LAYER_KIND_GLOBAL_MAX_POOLING2D,
    LAYER_KIND_ZERO_PADDING2D,
    LAYER_KIND_RELU,           /* ReLU(max_value, negative_slope, threshold) */
    LAYER_KIND_LEAKY_RELU,     /* LeakyReLU(negative_slope / alpha) */
    LAYER_KIND_ELU,            /* ELU(alpha) */
    LAYER_KIND_SOFTMAX,        /* Softmax(axis=-1) */
    LAYER_KIND_RESCALING,      /* x * scale + offset */
    LAYER_KIND_RESHAPE,
    LAYER_KIND_SPATIAL_DROPOUT2D,
    LAYER_KIND_INPUT,          /* a functional model's InputLayer (its output is the input) */
    LAYER_KIND_ADD,
    LAYER_KIND_CONCATENATE,    /* on the channels axis */
    LAYER_KIND_DEPTHWISE_CONV2D,
    LAYER_KIND_SEPARABLE_CONV2D, /* depthwise (kh, kw, C, M) then pointwise (1, 1, C * M, filters) */
    /* augmentation (Keras 3 image preprocessing): random in training only,
     * the identity in inference except RandomCrop (augment.c) */
    LAYER_KIND_RANDOM_FLIP,
    LAYER_KIND_RANDOM_TRANSLATION,
    LAYER_KIND_RANDOM_ROTATION,
    LAYER_KIND_RANDOM_ZOOM,
    LAYER_KIND_RANDOM_CONTRAST,
    LAYER_KIND_RANDOM_CROP,
};
#define N_LAYER_KINDS 29

static inline int layer_kind_is_augment(int k)
{
    return k >= LAYER_KIND_RANDOM_FLIP && k <= LAYER_KIND_RANDOM_CROP;
}

enum activation_kind {
    ACTIVATION_KIND_LINEAR,
    ACTIVATION_KIND_RELU,
    ACTIVATION_KIND_SIGMOID,
    ACTIVATION_KIND_TANH,
    ACTIVATION_KIND_SOFTMAX,
    ACTIVATION_KIND_ELU,          /* alpha 1 */
    ACTIVATION_KIND_SELU,
    ACTIVATION_KIND_GELU,         /* exact (erf), Keras' default approximate=False */
    ACTIVATION_KIND_SWISH,        /* x * sigmoid(x), also called silu */
    ACTIVATION_KIND_SOFTPLUS,
    ACTIVATION_KIND_HARD_SIGMOID, /* Keras 3: relu6(x + 3) / 6 */
    ACTIVATION_KIND_LEAKY_RELU,   /* negative_slope 0.2 */
};
#define N_ACTIVATION_KINDS 12

/* Activations whose derivative needs the input, not only the output. */
static inline int activation_kind_needs_input(int a)
{
    return a == ACTIVATION_KIND_GELU || a == ACTIVATION_KIND_SWISH;
}

enum padding_kind {
    PADDING_KIND_VALID,
    PADDING_KIND_SAME,
};

#define LAYER_MAX_INPUTS 8
/* Initializer slots of a layer config: its weights, in Keras order. */
#define LAYER_INIT_SLOTS 4

/* RandomFlip mode */
enum flip_mode {
    FLIP_MODE_HORIZONTAL_AND_VERTICAL, /* Keras' default: one draw flips both axes */
    FLIP_MODE_HORIZONTAL,
    FLIP_MODE_VERTICAL,
};

/* Keras 3 affine_transform fill_mode: how a sample outside the image is read. */
enum fill_mode {
    FILL_MODE_REFLECT,  /* (d c b a | a b c d | d c b a), Keras' default */
    FILL_MODE_WRAP,     /* (a b c d | a b c d | a b c d) */
    FILL_MODE_CONSTANT, /* (k k k k | a b c d | k k k k), k = fill_value */
    FILL_MODE_NEAREST,  /* (a a a a | a b c d | d d d d) */
};

enum interpolation_kind {
    INTERPOLATION_KIND_BILINEAR,
    INTERPOLATION_KIND_NEAREST,
};

/* An augmentation layer's config (Keras 3 get_config()). */
struct augment_config {
    enum flip_mode mode;            /* RandomFlip */
    float height_factor[2];         /* RandomTranslation, RandomZoom: (lower, upper) */
    float width_factor[2];          /* RandomTranslation, RandomZoom */
    bool width_factor_set;          /* RandomZoom: false = width_factor null (height's draw) */
    float factor[2];                /* RandomRotation, RandomContrast: (lower, upper) */
    float value_range[2];           /* RandomContrast: clip range, (0, 255) */
    enum fill_mode fill_mode;
    float fill_value;
    enum interpolation_kind interpolation;
    int crop[2];                    /* RandomCrop (height, width) */
    bool seed_set;                  /* the layer's own seed (mixed into its random streams) */
    int seed;
};

/* One layer as Keras configures it (the "config" object of model.to_json()). */
struct layer_config {
    enum layer_kind kind;
    char name[64];                   /* Keras name: conv2d, conv2d_1, batch_normalization, ... */
    enum activation_kind activation; /* Conv2D, Dense, Activation; LINEAR otherwise */
    int filters;                     /* Conv2D, SeparableConv2D */
    int depth_multiplier;            /* DepthwiseConv2D, SeparableConv2D (1) */
    int units;                       /* Dense */
    int kernel_size[2];              /* Conv2D (kh, kw) */
    int pool_size[2];                /* pooling (ph, pw) */
    int strides[2];                  /* Conv2D and pooling (sh, sw); pooling default = pool_size */
    int dilation_rate[2];            /* Conv2D, DepthwiseConv2D, SeparableConv2D (1, 1); Keras
                                        refuses a dilation > 1 with strides > 1 */
    int groups;                      /* Conv2D (1): divides the input channels and filters */
    enum padding_kind padding;       /* Conv2D and pooling */
    bool use_bias;                   /* Conv2D, Dense (default true) */
    float momentum;                  /* BatchNormalization (0.99) */
    float epsilon;                   /* BatchNormalization (1e-3) */
    float rate;                      /* Dropout, SpatialDropout2D */
    float alpha;                     /* ReLU/LeakyReLU negative_slope, ELU alpha */
    float max_value;                 /* ReLU (INFINITY = none) */
    float threshold;                 /* ReLU */
    float scale, offset;             /* Rescaling */
    int pad[4];                      /* ZeroPadding2D (top, bottom, left, right) */
    int target_shape[3];             /* Reshape: (H, W, C), (1, 1, C) for a 1-D target */
    bool target_flat;                /* Reshape: a 1-D target (a flat Keras tensor) */
    bool keepdims;                   /* global pooling */
    struct augment_config aug;       /* RandomFlip, RandomTranslation, ... RandomCrop */
    /* Functional models: the layers whose outputs this layer takes, as indices
     * of earlier layers (n_inputs 0 in a Sequential spec: the previous layer;
     * Add and Concatenate take 2 or more). */
    int n_inputs;
    int inputs[LAYER_MAX_INPUTS];
    bool frozen;                     /* Keras trainable=False: no weight is trained, and a
                                        BatchNormalization runs in inference mode */
    struct initializer init[LAYER_INIT_SLOTS]; /* one per weight in Keras order: Conv2D and
                                                  Dense (kernel, bias), BatchNormalization
                                                  (gamma, beta, moving_mean, moving_variance);
                                                  INIT_DEFAULT (zeroed) is Keras' default */
};

/* A layer's dilation on axis 0 (rows) or 1 (columns) and its groups; 0
 * (a config built without layer_config_init) reads as 1. */
static inline int layer_dilation(const struct layer_config *l, int axis)
{
    return l->dilation_rate[axis] > 0 ? l->dilation_rate[axis] : 1;
}
static inline int layer_groups(const struct layer_config *l)
{
    return l->groups > 0 ? l->groups : 1;
}

/* Which Keras writes a config: tf.keras 2.15 (model_config and
 * training_config of full-model HDF5 files) or Keras 3 (config.json of a
 * `.keras` archive: every object as {"module", "class_name", "config",
 * "registered_name"}, dtype policies, build_config, __keras_tensor__
 * nodes).  The Keras 3 form is that of KERAS3_FORM_VERSION's source. */
enum keras_flavour {
    KERAS_FLAVOUR_TF2,
    KERAS_FLAVOUR_KERAS3,
};
#define KERAS3_FORM_VERSION "3.10.0"

/* A Sequential or functional model's description.  A functional spec's
 * layer 0 is its InputLayer (LAYER_KIND_INPUT), every layer names its inputs,
 * the layers are in Keras' order (topological: inputs come first) and the
 * last layer is the output. */
struct model_spec {
    char name[64];          /* Keras model name, "sequential" by default */
    bool functional;        /* class_name Functional / Model */
    int input_shape[3];     /* (H, W, C) */
    int n_layers;
    struct layer_config *layers; /* owned */
};

/* --- model_spec.c: defaults, names, copy, free --------------------------- */

int model_spec_copy(struct model_spec *ret, const struct model_spec *src);
void model_spec_free(struct model_spec *spec);
/* Keras class name of a layer kind ("Conv2D", "BatchNormalization", ...). */
const char *layer_kind_class_name(enum layer_kind kind);
/* Keras name of an activation ("linear", "relu", ...). */
const char *activation_kind_name(enum activation_kind a);
/* The activation called name; 0 or -EINVAL. */
int activation_kind_from_name(const char *name, enum activation_kind *ret);
/* The Keras name of the weight in initializer slot `slot` of a layer of
 * kind ("kernel", "bias", "gamma", ...), or NULL when it has none. */
const char *layer_init_slot_name(enum layer_kind kind, int slot);
/* A layer of `kind` with Keras' defaults; fields that do not apply are zero. */
void layer_config_init(struct layer_config *l, enum layer_kind kind);
/* Keras' automatic name of the count-th layer of a kind: conv2d, conv2d_1, ... */
void layer_auto_name(char *buf, size_t size, enum layer_kind kind, int count);
/* The number of inputs of layer i and its k-th input: an index of an earlier
 * layer, or -1 for the model's input. */
int model_spec_n_inputs(const struct model_spec *spec, int i);
int model_spec_input(const struct model_spec *spec, int i, int k);

/* --- model_shape.c: the validator ----------------------------------------- */

/* Output shape (H, W, C) of every layer for spec->input_shape, as TF computes
 * it: Conv2D/pooling "same" out = ceil(in / stride), "valid" out =
 * floor((in - k) / stride) + 1; Flatten gives (1, 1, features), Dense
 * (H, W, units) (on the last axis, as Keras).  ret_out_shapes is (n_layers,
 * 3), written only on success.  Errors (a size that becomes < 1, Conv2D or
 * pooling after Flatten, sizes beyond the MODEL_SPEC_* limits) name the
 * layer as "/config/layers/<i + 1>", its index in model_spec_to_json()'s
 * output, whose layer 0 is the InputLayer. */
int model_spec_infer_shapes(const struct model_spec *spec, int (*ret_out_shapes)[3],
                            struct diag *d);
/* The same with errors naming /config/layers/<json_index[i]> (json_index may
 * be NULL: i + 1), for the JSON reader whose layer list may hold an
 * InputLayer; out (n_layers, 3) may be written on failure too. */
int model_spec_infer_shapes_at(const struct model_spec *spec, const int *json_index,
                               int (*out)[3], struct diag *d);
/* The same, also telling which outputs are flat Keras tensors (N, features)
 * (ret_flat (n_layers), may be NULL). */
int model_spec_infer_shapes_flat(const struct model_spec *spec, const int *json_index,
                                 int (*out)[3], bool *ret_flat, struct diag *d);
/* Keras model.count_params(): all variables (ret_total) and the trainable
 * ones (ret_trainable, Keras "Trainable params"); either may be NULL. */
int model_spec_count_params(const struct model_spec *spec, size_t *ret_total,
                            size_t *ret_trainable, struct diag *d);
/* Keras model.summary()'s "Param #" of every layer: ret_params[i] all of
 * layer i's variables, ret_trainable[i] its trainable ones (0 for a frozen
 * layer), both (n_layers) and may be NULL; the sums into ret_total and
 * ret_total_trainable (may be NULL), written only on success. */
int model_spec_layer_params(const struct model_spec *spec, size_t *ret_params,
                            size_t *ret_trainable, size_t *ret_total,
                            size_t *ret_total_trainable, struct diag *d);
/* Number of classes (> 0) when the model ends in a Dense or Activation
 * layer on a flat output, else a negative errno with d filled. */
int model_spec_output_classes(const struct model_spec *spec, struct diag *d);
/* 0 when the loss trains the model's last activation (model_shape.c says
 * which pairs), else -EINVAL with d naming "/loss". */
struct loss_config;
int model_spec_check_loss(const struct model_spec *spec, const struct loss_config *loss,
                          struct diag *d);

/* --- model_json_read.c ---------------------------------------------------- */

/* Parse the JSON that tf.keras model.to_json() prints (class_name
 * "Sequential").  input_shape overrides/provides (H, W, C) when the JSON has
 * none (may be NULL).  Errors name the layer index and key in d->field, e.g.
 * "/config/layers/4/config/pool_size". */
int model_spec_parse_json(struct model_spec *ret, const char *json, size_t len,
                          const int input_shape[3], struct diag *d);

/* --- model_json_write.c --------------------------------------------------- */

/* The Keras JSON for spec (malloc'ed string, caller frees): tf.keras 2.15's
 * model.to_json() (with keras_version and backend), or Keras 3's
 * serialize_keras_object(model) with its build_config and without
 * compile_config (the archive adds it).  Parsing either again gives the same
 * spec.  NULL on allocation failure.  model_spec_to_json is the tf.keras 2
 * flavour. */
char *model_spec_to_json_flavour(const struct model_spec *spec, enum keras_flavour flavour);
char *model_spec_to_json(const struct model_spec *spec);

/* --- model_builtin.c ------------------------------------------------------- */

/* Built-in models: "minivggnet", "shallownet", "lenet", "mlp". */
int model_spec_builtin(struct model_spec *ret, const char *name, const int input_shape[3],
                       int classes, struct diag *d);
/* NULL-terminated list of built-in names. */
const char *const *model_builtin_names(void);

#endif
