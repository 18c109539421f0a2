//! The connection as the store's operations see it: every statement is prepared once per
//! connection and reused ([`Statements`]), so a step's dozen statements cost the server an
//! execution each, not a parse and a plan each, and the client one round trip each, not two.
//! [`Conn`] is the connection, [`Tx`] a transaction on it; both are [`Db`].

use std::collections::HashMap;

use postgres::types::ToSql;
use postgres::{Client, GenericClient, Row, Statement, Transaction};

/// The statements prepared on one connection, by their text.
#[derive(Default)]
pub(super) struct Statements(HashMap<String, Statement>);

impl Statements {
    fn get(&mut self, c: &mut impl GenericClient, sql: &str) -> Result<Statement, postgres::Error> {
        if let Some(statement) = self.0.get(sql) {
            return Ok(statement.clone());
        }
        let statement = c.prepare(sql)?;
        // The store's statements are a few dozen texts; a bound keeps a bug from growing it.
        if self.0.len() >= 1024 {
            self.0.clear();
        }
        self.0.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }

    /// Forgets them (the connection they were prepared on is gone).
    pub(super) fn clear(&mut self) {
        self.0.clear();
    }
}

/// SQL text (prepared once, then reused) or a statement prepared already.
pub(super) trait Sql {
    fn statement(
        &self,
        c: &mut impl GenericClient,
        statements: &mut Statements,
    ) -> Result<Statement, postgres::Error>;
}

impl Sql for str {
    fn statement(
        &self,
        c: &mut impl GenericClient,
        statements: &mut Statements,
    ) -> Result<Statement, postgres::Error> {
        statements.get(c, self)
    }
}

impl Sql for String {
    fn statement(
        &self,
        c: &mut impl GenericClient,
        statements: &mut Statements,
    ) -> Result<Statement, postgres::Error> {
        statements.get(c, self)
    }
}

impl Sql for Statement {
    fn statement(
        &self,
        _: &mut impl GenericClient,
        _: &mut Statements,
    ) -> Result<Statement, postgres::Error> {
        Ok(self.clone())
    }
}

type Params<'a> = [&'a (dyn ToSql + Sync)];

/// What runs statements: the connection or a transaction on it.
pub(super) trait Db {
    fn execute(
        &mut self,
        sql: &(impl Sql + ?Sized),
        params: &Params<'_>,
    ) -> Result<u64, postgres::Error>;
    fn query(
        &mut self,
        sql: &(impl Sql + ?Sized),
        params: &Params<'_>,
    ) -> Result<Vec<Row>, postgres::Error>;
    fn query_opt(
        &mut self,
        sql: &(impl Sql + ?Sized),
        params: &Params<'_>,
    ) -> Result<Option<Row>, postgres::Error>;
    fn prepare(&mut self, sql: &str) -> Result<Statement, postgres::Error>;

    fn query_one(
        &mut self,
        sql: &(impl Sql + ?Sized),
        params: &Params<'_>,
    ) -> Result<Row, postgres::Error>;
}

/// A client and the statements prepared on its connection.
pub(super) trait Parts {
    type Client: GenericClient;
    fn parts(&mut self) -> (&mut Self::Client, &mut Statements);
}

impl<T: Parts> Db for T {
    fn execute(
        &mut self,
        sql: &(impl Sql + ?Sized),
        params: &Params<'_>,
    ) -> Result<u64, postgres::Error> {
        let (c, statements) = self.parts();
        let statement = sql.statement(c, statements)?;
        c.execute(&statement, params)
    }

    fn query(
        &mut self,
        sql: &(impl Sql + ?Sized),
        params: &Params<'_>,
    ) -> Result<Vec<Row>, postgres::Error> {
        let (c, statements) = self.parts();
        let statement = sql.statement(c, statements)?;
        c.query(&statement, params)
    }

    fn query_opt(
        &mut self,
        sql: &(impl Sql + ?Sized),
        params: &Params<'_>,
    ) -> Result<Option<Row>, postgres::Error> {
        let (c, statements) = self.parts();
        let statement = sql.statement(c, statements)?;
        c.query_opt(&statement, params)
    }

    fn query_one(
        &mut self,
        sql: &(impl Sql + ?Sized),
        params: &Params<'_>,
    ) -> Result<Row, postgres::Error> {
        let (c, statements) = self.parts();
        let statement = sql.statement(c, statements)?;
        c.query_one(&statement, params)
    }

    fn prepare(&mut self, sql: &str) -> Result<Statement, postgres::Error> {
        let (c, statements) = self.parts();
        sql.statement(c, statements)
    }
}

/// The connection, with its prepared statements.
pub(super) struct Conn<'a> {
    pub(super) client: &'a mut Client,
    pub(super) statements: &'a mut Statements,
}

impl Conn<'_> {
    /// Begins a transaction (rolled back if dropped without [`Tx::commit`]).
    pub(super) fn transaction(&mut self) -> Result<Tx<'_>, postgres::Error> {
        Ok(Tx {
            tx: self.client.transaction()?,
            statements: self.statements,
        })
    }

    /// The client itself, for what is run once (migrations, tests).
    pub(super) fn raw(&mut self) -> &mut Client {
        self.client
    }
}

/// A transaction on the connection.
pub(super) struct Tx<'a> {
    tx: Transaction<'a>,
    statements: &'a mut Statements,
}

impl Tx<'_> {
    pub(super) fn commit(self) -> Result<(), postgres::Error> {
        self.tx.commit()
    }
}

impl Parts for Conn<'_> {
    type Client = Client;
    fn parts(&mut self) -> (&mut Client, &mut Statements) {
        (&mut *self.client, &mut *self.statements)
    }
}

impl<'a> Parts for Tx<'a> {
    type Client = Transaction<'a>;
    fn parts(&mut self) -> (&mut Transaction<'a>, &mut Statements) {
        (&mut self.tx, &mut *self.statements)
    }
}
