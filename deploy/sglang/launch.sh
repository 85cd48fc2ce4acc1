#!/usr/bin/env bash
# GLM-OCR on SGLang for docextract (one GPU). Point docextract at it with
#   DOCEXTRACT_SGLANG_URL=http://<host>:30000 DOCEXTRACT_SGLANG_MODEL=glm-ocr
# Settings (environment): MODEL (weights folder or hub id), PORT, MAX_RUNNING (requests batched at
# once), GRAMMAR_BACKEND (llguidance enforces nearly all of JSON Schema and errors on the rest).
set -euo pipefail
MODEL="${MODEL:-zai-org/GLM-OCR}"
PORT="${PORT:-30000}"
MAX_RUNNING="${MAX_RUNNING:-64}"
GRAMMAR_BACKEND="${GRAMMAR_BACKEND:-llguidance}"

# Speculative decoding (GLM-OCR's MTP head, as in its README) silently caps --max-running-requests
# at 48 unless it is set explicitly, so it is. Keep docextract's DOCEXTRACT_MAX_IN_FLIGHT at or a
# little above MAX_RUNNING so the batch stays full without a long queue on the server.
exec python -m sglang.launch_server \
  --model-path "$MODEL" \
  --served-model-name glm-ocr \
  --host 0.0.0.0 --port "$PORT" \
  --speculative-algorithm NEXTN \
  --speculative-num-steps 3 \
  --speculative-eagle-topk 1 \
  --speculative-num-draft-tokens 4 \
  --max-running-requests "$MAX_RUNNING" \
  --grammar-backend "$GRAMMAR_BACKEND" \
  --enable-metrics \
  "$@"
