'use strict';
module.exports = { rateLimit: null, rateLimitHeaders: null };
