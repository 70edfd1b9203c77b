# syntax=docker/dockerfile:1

# Build stage: compile with the dev dependencies, then drop them.
FROM node:20-bookworm-slim AS build
WORKDIR /app

# The lock file alone decides the install layer, so source edits reuse the cached node_modules.
COPY package.json package-lock.json ./
RUN npm ci

COPY . .
RUN npm run build \
  && npm prune --omit=dev

# Runtime stage: compiled output and production dependencies only.
FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app

# Owned by root and read-only to the process that runs them.
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist

USER node
EXPOSE 3000
CMD ["node", "dist/src/main.js"]
