//! The models: the embedder (ONNX Runtime through fastembed) and the generator
//! (llama.cpp through llama-cpp-2). Only this module knows ONNX and llama.cpp.

pub mod embed;
pub mod generate;
pub mod rerank;
