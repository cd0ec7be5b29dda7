-- The order-fanout example's application: an order service with its own
-- table, app.orders. Each new order has two followers, the inventory
-- service (reserve the items) and the email service (send the
-- confirmation). The order service does not call them: a trigger adds one
-- task for each, in the order's own transaction, and pgdispatch delivers
-- them (pgdispatch.yaml). So an order is committed together with its
-- followers' tasks or not at all, and the INSERT never waits for a
-- service, however slow or down it is.
--
--   psql -v service_role=NAME -f examples/order-fanout/schema.sql
--
-- NAME is the login role the order service inserts orders as; it gets
-- what it needs here and must be a member of dispatch_producer (see
-- `pgdispatch roles`). The daemon needs nothing in schema app: its
-- handlers talk HTTP, not SQL.

CREATE SCHEMA app;

CREATE TABLE app.orders (
    id         bigserial PRIMARY KEY,
    customer   text NOT NULL,
    email      text NOT NULL,
    items      jsonb NOT NULL,          -- [{"sku": "...", "qty": N}, ...]
    total      numeric(10, 2) NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- One task per follower. A plain INSERT into dispatch.tasks: it commits or
-- rolls back with the order, and wakes an idle daemon by NOTIFY at commit.
-- The payload carries what each service needs, so neither has to read the
-- order service's database.
CREATE FUNCTION app.order_created() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO dispatch.tasks (kind, payload)
    VALUES ('order.created.inventory',
            jsonb_build_object('order_id', NEW.id, 'items', NEW.items)),
           ('order.created.email',
            jsonb_build_object('order_id', NEW.id, 'to', NEW.email,
                               'customer', NEW.customer, 'total', NEW.total));
    RETURN NEW;
END
$$;

CREATE TRIGGER order_created
    AFTER INSERT ON app.orders
    FOR EACH ROW EXECUTE FUNCTION app.order_created();

-- The order service writes orders; the trigger's INSERT into
-- dispatch.tasks runs with its privileges, which dispatch_producer gives.
GRANT USAGE ON SCHEMA app TO :"service_role";
GRANT SELECT, INSERT ON app.orders TO :"service_role";
GRANT USAGE ON SEQUENCE app.orders_id_seq TO :"service_role";
