//! The models: the embedder (ONNX Runtime through fastembed) and the generator
//! (llama.cpp through llama-cpp-2, or an OpenAI-compatible model server over HTTP). Only
//! this module knows ONNX, llama.cpp and the model server's API.

pub mod chat;
pub mod embed;
pub mod generate;
pub mod remote;
pub mod rerank;
