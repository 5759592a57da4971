# Handoff server image.
#
#   docker build -t handoff .
#   docker run --rm -p 3000:3000 -e JWT_SECRET="$(openssl rand -base64 48)" handoff
#
# Two stages on the same base:
#   build    – every dependency (dev included), `tsc -b` → protocol/dist, server/dist, client-sdk/dist
#   runtime  – production dependencies only, the compiled output and server/lua; runs as `node`
#
# No compiler toolchain is needed in either stage: bcrypt ships prebuilt N-API binaries
# (linux-x64/arm64, glibc and musl) inside its npm package, and node-gyp-build picks them up.
# See docs/operations.md for configuration and docker-compose.yml for Redis + two nodes.

# Node.js 24 LTS (package.json engines: >= 22; .ci/run tests on 24).
ARG NODE_IMAGE=node:24-bookworm-slim

# ---------------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
ENV NPM_CONFIG_UPDATE_NOTIFIER=false NPM_CONFIG_FUND=false NPM_CONFIG_AUDIT=false

# Manifests first, so the dependency layer is cached until a package.json or the lockfile changes.
# Every workspace's package.json must be present for `npm ci` to link the workspaces.
COPY package.json package-lock.json ./
COPY protocol/package.json protocol/
COPY server/package.json server/
COPY client-sdk/package.json client-sdk/
RUN npm ci

# Sources. *.tsbuildinfo is excluded by .dockerignore: a stale one would make `tsc -b` skip the emit.
COPY tsconfig.json tsconfig.base.json ./
COPY protocol/tsconfig.json protocol/
COPY protocol/src protocol/src
COPY server/tsconfig.json server/
COPY server/src server/src
COPY client-sdk/tsconfig.json client-sdk/
COPY client-sdk/src client-sdk/src
COPY client-sdk/scripts client-sdk/scripts
RUN npm run build

# ---------------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
WORKDIR /app
ENV NODE_ENV=production \
    NPM_CONFIG_UPDATE_NOTIFIER=false NPM_CONFIG_FUND=false NPM_CONFIG_AUDIT=false

# Production dependencies only, for every workspace: every workspace's package.json must be
# present for npm to link the workspaces (server/package.json depends on @handoff/protocol, the
# local protocol/ workspace, which the server imports at run time). The root has only dev
# dependencies; client-sdk's few production dependencies cost a few MB.
COPY package.json package-lock.json ./
COPY protocol/package.json protocol/
COPY server/package.json server/
COPY client-sdk/package.json client-sdk/
RUN npm ci --omit=dev \
    && npm cache clean --force \
    && rm -rf /root/.npm /tmp/*

# Compiled output. The server reads its Lua scripts from server/lua at run time (each store
# resolves ../../lua from its folder under server/dist). Files stay owned by root: the `node` user
# can read, not modify, the application.
COPY --from=build /app/protocol/dist protocol/dist
COPY --from=build /app/server/dist server/dist
COPY --from=build /app/client-sdk/dist client-sdk/dist
COPY server/lua server/lua
COPY server/public server/public

USER node
EXPOSE 3000

# Liveness through node itself (slim images have no curl). Uses PORT if it was overridden.
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

# node is PID 1 and handles SIGTERM itself (drains, then exits; bound: SHUTDOWN_TIMEOUT_SECONDS).
CMD ["node", "server/dist/main.js"]
