// The one whitelist of element-wise numpy functions a document may name (scorer/_numpy_funcs.py):
// FunctionTransformer (plus clip, which takes constants) and TransformedTargetRegressor.
export const FUNCS = {
  log: Math.log,
  log1p: Math.log1p,
  exp: Math.exp,
  expm1: Math.expm1,
  sqrt: Math.sqrt,
  abs: Math.abs,
  square: (v) => v * v,
};
