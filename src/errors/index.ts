export * from './codes';
export * from './orderflow-error';
