/**
 * Package entry point (`import { createOrderFlowClient } from 'orderflow'`):
 * the typed client. The service itself runs from `dist/src/main.js`.
 */
export * from './client';
