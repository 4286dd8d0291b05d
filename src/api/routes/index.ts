import type { FastifyInstance } from 'fastify';
import { conformanceRoutes } from './conformance.js';
import type { Services } from '../../context/services.js';
import { deploymentRoutes } from './deployments.js';
import { engineRoutes } from './engine.js';
import { platformRoutes } from './platform.js';
import { providerRoutes } from './providers.js';

/**
 * Route plugins beyond the built-in ones (the generic kind routes, apply, tokens,
 * events, health and metrics). Each gets the root-level Fastify instance and the
 * services, after the built-in routes, so its routes are authenticated, validated,
 * error-mapped and listed in the OpenAPI document like every other.
 *
 * Rules for a plugin's routes:
 *  - put them under `/api/v1/…`; `config: { auth: 'viewer' | 'operator' | 'admin' | 'public' }`
 *    sets the least role (default: GET viewer, other methods operator);
 *  - give them a `schema` (TypeBox) with `tags`/`summary`; bodies are validated strictly
 *    (unknown fields refused), query strings with type coercion;
 *  - throw FormworkError; the error handler renders it; `actorOf(request)` (api/auth.ts)
 *    is the user to record as `actor`.
 *
 * @example
 *   // src/engine/routes.ts
 *   export const engineRoutes: RoutePlugin = async (app, services) => {
 *     app.post('/api/v1/deployments/:name/commit', { schema: { … } }, async (req) => …);
 *   };
 *   // here:
 *   import { engineRoutes } from '../../engine/routes.js';
 *   export const ROUTE_PLUGINS: RoutePlugin[] = [engineRoutes];
 */
export type RoutePlugin = (app: FastifyInstance, services: Services) => Promise<void>;

export const ROUTE_PLUGINS: RoutePlugin[] = [deploymentRoutes, conformanceRoutes, engineRoutes, platformRoutes, providerRoutes];
