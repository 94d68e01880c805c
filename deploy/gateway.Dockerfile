# Hourglass gateway. Build from the repository root:
#   docker build -f deploy/gateway.Dockerfile -t <repo>/gateway:<tag> .
# Base image pinned by exact version; for reproducible builds also pin the digest:
#   node:20.20.2-bookworm-slim@sha256:<digest>   (docker buildx imagetools inspect node:20.20.2-bookworm-slim)

# --- build: compile TypeScript with dev dependencies, then keep production ones only ---
FROM node:20.20.2-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.base.json ./
COPY packages ./packages
COPY services ./services
COPY schemas ./schemas
# Outputs from the host must not stand in for a fresh build.
RUN rm -rf packages/*/dist services/*/dist
RUN npm ci --no-audit --no-fund && npx tsc -b services/gateway
# npm ci starts from an empty node_modules: this leaves the production dependencies of this
# service's workspace (and of the workspaces it depends on) only, not the CLI's or the tools'.
RUN npm ci --omit=dev --workspace services/gateway --no-audit --no-fund \
  && rm -rf packages/*/src services/*/src packages/*/tsconfig.json services/*/tsconfig.json \
  && npm cache clean --force

# --- runtime: production dependencies and compiled output, as an unprivileged user ---
FROM node:20.20.2-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
# Only the workspaces this service runs: @hourglass/common, @hourglass/schemas and itself.
COPY --from=build /app/packages/common ./packages/common
COPY --from=build /app/packages/schemas ./packages/schemas
COPY --from=build /app/services/gateway ./services/gateway
COPY --from=build /app/schemas ./schemas
# Files stay owned by root: the service can read its code but not change it.
USER node
# Cloud Run sends SIGTERM; the service handles it (drain, then exit), so node runs as PID 1.
EXPOSE 8080
# --v8-pool-size=1: GATEWAY_NODE_ARGS in packages/common/src/process.ts says why.
CMD ["node", "--v8-pool-size=1", "services/gateway/dist/server.js"]
