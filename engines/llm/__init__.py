"""The LLM engine: one streaming chat interface, several backends, a fallback chain.

``interface`` declares the request/reply types and ``LlmBackend``;
``chat_engine.LlmEngine`` is what the daemon uses; ``backend_factory`` builds
backends from settings. Backends: llama.cpp (server child process or in
process, CPU default), a supervised vLLM server (GPU, persona LoRA adapters),
OpenAI-compatible HTTP APIs (OpenAI, DeepSeek, OpenRouter, Gemini, any URL)
and Anthropic's Messages API.
"""
