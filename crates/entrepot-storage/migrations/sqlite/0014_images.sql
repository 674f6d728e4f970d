-- The images that hold manifests, one row each, kept by triggers on
-- `manifests`: a catalog page reads its rows from the `path` index (page size
-- plus a lookup) instead of a DISTINCT over every manifest.
CREATE TABLE images (
    project    TEXT NOT NULL,
    repository TEXT NOT NULL,
    image      TEXT NOT NULL,
    -- `project/repository/image`, the catalog's name and order.
    path       TEXT NOT NULL UNIQUE,
    -- Manifests of the image; the row goes with the last one.
    manifests  INTEGER NOT NULL,
    PRIMARY KEY (project, repository, image)
);

INSERT INTO images (project, repository, image, path, manifests)
SELECT project, repository, image, project || '/' || repository || '/' || image, COUNT(*)
FROM manifests GROUP BY project, repository, image;

CREATE TRIGGER images_on_manifest_insert AFTER INSERT ON manifests
BEGIN
    INSERT INTO images (project, repository, image, path, manifests)
    VALUES (NEW.project, NEW.repository, NEW.image,
            NEW.project || '/' || NEW.repository || '/' || NEW.image, 1)
    ON CONFLICT (project, repository, image) DO UPDATE SET manifests = manifests + 1;
END;

CREATE TRIGGER images_on_manifest_delete AFTER DELETE ON manifests
BEGIN
    UPDATE images SET manifests = manifests - 1
    WHERE project = OLD.project AND repository = OLD.repository AND image = OLD.image;
    DELETE FROM images
    WHERE project = OLD.project AND repository = OLD.repository AND image = OLD.image
      AND manifests <= 0;
END;
