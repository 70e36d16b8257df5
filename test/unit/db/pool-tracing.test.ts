import { expect } from 'chai';
import { dbBaseAttributes, sqlCommandOf } from '../../../src/db/pool-tracing';

describe('db/pool-tracing', () => {
  it('finds the SQL command word past blanks, comments and parentheses', () => {
    expect(sqlCommandOf('SELECT 1')).to.equal('SELECT');
    expect(sqlCommandOf('  \n\tinsert into t values ($1)')).to.equal('INSERT');
    expect(sqlCommandOf('-- orders.get\nSELECT * FROM orders')).to.equal('SELECT');
    expect(sqlCommandOf('/* hint */ (select 1) union (select 2)')).to.equal('SELECT');
    expect(sqlCommandOf('COPY fills (a, b) FROM STDIN')).to.equal('COPY');
    expect(sqlCommandOf('BEGIN ISOLATION LEVEL SERIALIZABLE')).to.equal('BEGIN');
    expect(sqlCommandOf('-- only a comment')).to.equal('');
    expect(sqlCommandOf('')).to.equal('');
  });

  it('takes server, port and database from the URL, never the password', () => {
    const attrs = dbBaseAttributes('postgres://user:s3cret@db.example:6543/orders_db?sslmode=disable', 'orderflow');
    expect(attrs).to.include({ 'db.system.name': 'postgresql', 'server.address': 'db.example', 'server.port': 6543, 'db.namespace': 'orders_db' });
    expect(JSON.stringify(attrs)).not.to.include('s3cret');
    expect(dbBaseAttributes('postgres://localhost/x', 'a')['server.port']).to.equal(5432);
    expect(dbBaseAttributes('not a url', 'a')).to.include({ 'db.system.name': 'postgresql' });
  });
});
