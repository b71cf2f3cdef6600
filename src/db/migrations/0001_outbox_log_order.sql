CREATE TABLE "outbox_checkpoint" (
	"name" text PRIMARY KEY NOT NULL,
	"xid" "xid8" NOT NULL,
	"position" bigint NOT NULL
);
--> statement-breakpoint
DROP INDEX "outbox_unsent";--> statement-breakpoint
DROP INDEX "outbox_unsent_by_order";--> statement-breakpoint
DROP INDEX "outbox_sent_at";--> statement-breakpoint
ALTER TABLE "outbox" ADD COLUMN "xid" "xid8" DEFAULT pg_current_xact_id() NOT NULL;--> statement-breakpoint
CREATE INDEX "outbox_xid_position" ON "outbox" USING btree ("xid","position");--> statement-breakpoint
-- Rows written before this migration share its xid, so among them position alone orders. The relay
-- resumes after the longest prefix already shipped; anything after it may go out once more.
INSERT INTO "outbox_checkpoint" ("name", "xid", "position")
SELECT 'relay', COALESCE((SELECT o."xid" FROM "outbox" o WHERE o."position" <= p.at ORDER BY o."position" DESC LIMIT 1), '0'::xid8), p.at
FROM (SELECT COALESCE((SELECT min("position") - 1 FROM "outbox" WHERE "sent_at" IS NULL), (SELECT max("position") FROM "outbox"), 0) AS at) p;--> statement-breakpoint
ALTER TABLE "outbox" DROP COLUMN "sent_at";--> statement-breakpoint
ALTER TABLE "outbox" DROP COLUMN "claimed_at";