# syntax=docker/dockerfile:1
# The order service: one image for every role (api, notifier, changelog, all), run as an unprivileged user.

# Build: all dependencies, the TypeScript and the console.
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY web ./web
COPY scripts/bundle.ts ./scripts/bundle.ts
RUN npm run build

# Production dependencies only, installed apart so the image carries no compiler or test tools, nor the
# Node.js binary package (node-linux-*) that a clone runs on: the image's own Node 24 runs the service.
FROM node:24-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --omit=optional --no-audit --no-fund --ignore-scripts

FROM node:24-bookworm-slim
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
# Listens on every interface, so it starts only with API_KEYS set (the service refuses to run open off loopback).
# DATA_DIR is where the embedded database would live when DATABASE_URL is unset (ROLE=all only).
ENV HOST=0.0.0.0 PORT=8001 DATA_DIR=/data
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 8001
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8001) + '/readyz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# The role is the argument: `docker run … order-service api` (default: all).
ENTRYPOINT ["node", "dist/server.js"]
CMD []
